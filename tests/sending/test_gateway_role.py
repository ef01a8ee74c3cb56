"""The gateway role on real Redis: receipt policy per channel, the receipt deadline (outcome ``unknown``), the
outstanding-receipt count, heartbeats for ``channel list``; end to end through a real peer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
from sending_helpers import run
from sending_peers.processes import HTTP_TOKEN, http_peer

from smsguard.sending import OutboundMessage, Receipt, SubmitResult, redis_client
from smsguard.sending._channels import ChannelSpec
from smsguard.sending._gateway_role import ChannelStore, GatewayRole, live_gateways, outstanding_by_channel
from smsguard.sending._store import event_from_fields

PEER_FACTORIES = {"http": http_peer}


def _events(url: str, ns: str) -> list[Any]:
    r = redis.Redis.from_url(url)
    return [event_from_fields(f) for _, f in r.xrange(f"{ns}:events")]


async def _submit_three_parts(store: ChannelStore, channel: str, mid: str) -> None:
    await store.ensure_groups()
    await store.enqueue([OutboundMessage(mid, "13800138000", "x" * 150)])
    assert await store.begin(OutboundMessage(mid, "13800138000", "x" * 150), channel) == "go"
    assert await store.record_submitted(SubmitResult(mid, channel, (f"{mid}-1", f"{mid}-2", f"{mid}-3"))) == "submitted"


def test_receipt_policy_last_part_vs_all_parts(redis_url: str, namespace: str) -> None:
    specs = [ChannelSpec(name="last", protocol="loopback", receipts="last_part"),
             ChannelSpec(name="all", protocol="loopback", receipts="all_parts")]

    async def main() -> dict[str, dict[str, str]]:
        r = redis_client(redis_url)
        store = ChannelStore(r, namespace, specs)
        out = {}
        for channel in ("last", "all"):
            mid = f"m-{channel}"
            await _submit_three_parts(store, channel, mid)
            assert (await outstanding_by_channel(r, namespace, [channel]))[channel] == 1
            # part 1 failed, part 2 never reported, part 3 delivered
            await store.on_receipt(Receipt(channel, f"{mid}-1", "13800138000", "failed", "UNDELIV"))
            await store.on_receipt(Receipt(channel, f"{mid}-3", "13800138000", "delivered", "DELIVRD"))
            out[channel] = await store.state(mid)
            out[channel]["outstanding"] = str((await outstanding_by_channel(r, namespace, [channel]))[channel])
        await r.aclose()
        return out

    states = run(main())
    assert states["last"]["state"] == "delivered" and states["last"]["outstanding"] == "0"
    assert states["all"]["state"] == "submitted" and states["all"]["outstanding"] == "1"  # part 2 still due
    reports = [e for e in _events(redis_url, namespace) if getattr(e, "status", None)]
    assert [(e.message_id, e.status) for e in reports] == [("m-last", "delivered")]


def test_a_receipt_past_the_deadline_becomes_unknown_once(redis_url: str, namespace: str) -> None:
    specs = [ChannelSpec(name="slow", protocol="loopback", receipt_deadline=30.0)]

    async def main() -> tuple[int, int, dict[str, str], int]:
        r = redis_client(redis_url)
        store = ChannelStore(r, namespace, specs)
        await _submit_three_parts(store, "slow", "m1")
        early = await store.expire_overdue(now=time.time() + 5)  # not yet due
        late = await store.expire_overdue(now=time.time() + 31)
        again = await store.expire_overdue(now=time.time() + 62)
        # a receipt arriving after the deadline changes no count: the message already left "outstanding"
        await store.on_receipt(Receipt("slow", "m1-1", "13800138000", "delivered", "DELIVRD"))
        left = (await outstanding_by_channel(r, namespace, ["slow"]))["slow"]
        state = await store.state("m1")
        await r.aclose()
        return early, late + again, state, left

    early, expired, state, left = run(main())
    assert (early, expired, left) == (0, 1, 0)
    assert state["state"] == "unknown" and state["carrier_code"] == "no_receipt"
    [report] = [e for e in _events(redis_url, namespace) if getattr(e, "status", None)]
    assert (report.message_id, report.status, report.carrier_code, report.gateway) == ("m1", "unknown",
                                                                                      "no_receipt", "slow")


def test_a_message_restored_after_a_redis_loss_still_meets_its_deadline(redis_url: str, namespace: str) -> None:
    """Re-driven from SQL as submitted (its receipt lost with Redis): it is awaited again, and the deadline
    makes it ``unknown`` rather than leaving it submitted for ever."""
    from smsguard.sending import Outbox, Redrive

    specs = [ChannelSpec(name="slow", protocol="loopback", receipt_deadline=30.0)]
    outbox = Outbox(redis.Redis.from_url(redis_url), namespace)
    epoch = outbox.open_epoch()
    assert outbox.redrive([Redrive("b1-1", "sealed", "text", gateway="slow", gateway_ids=("g1",))],
                          epoch=epoch) == "k"

    async def main() -> tuple[int, int, dict[str, str]]:
        r = redis_client(redis_url)
        store = ChannelStore(r, namespace, specs)
        due = (await outstanding_by_channel(r, namespace, ["slow"]))["slow"]
        expired = await store.expire_overdue(now=time.time() + 31)
        state = await store.state("b1-1")
        await r.aclose()
        return due, expired, state

    due, expired, state = run(main())
    assert (due, expired, state["state"]) == (1, 1, "unknown")
    [report] = [e for e in _events(redis_url, namespace) if getattr(e, "status", None)]
    assert (report.message_id, report.status) == ("b1-1", "unknown")


def test_role_through_a_provider_that_never_reports(redis_url: str, namespace: str, peers) -> None:
    """A real HTTP provider whose reports are never fetched: every message ends ``unknown`` at the deadline,
    a heartbeat names the channel meanwhile, and nothing is left outstanding."""
    if "http" not in peers:
        peers["http"] = PEER_FACTORIES["http"]().start()
    specs = [
        ChannelSpec(name="mute-http", protocol="http", url=f"http://127.0.0.1:{peers['http'].port}",
                    password_env="TOKEN", receipt_deadline=1.0, window=8,
                    options={"reports_path": None, "mo_path": None}),
    ]
    messages = [OutboundMessage(f"n{i}", f"1390000{i:04d}", f"【示例】通知{i}") for i in range(20)]
    sync = redis.Redis.from_url(redis_url)

    async def main() -> tuple[dict[str, Any], list[str]]:
        r = redis_client(redis_url)
        store = ChannelStore(r, namespace, specs)
        await store.ensure_groups()
        await store.enqueue(messages)
        role = GatewayRole(redis_url, namespace, specs, process="test-gw-1", env={"TOKEN": HTTP_TOKEN},
                           sweep_every=0.2, heartbeat_every=0.2)
        stop = asyncio.Event()
        task = asyncio.create_task(role.run(stop))
        beat: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            beat = beat or live_gateways(sync, namespace)
            states = [(await store.state(m.id)).get("state") for m in messages]
            if all(s == "unknown" for s in states):
                break
        stop.set()
        await task
        await r.aclose()
        return beat, states

    beat, states = run(main())
    assert states == ["unknown"] * 20
    channel = beat["test-gw-1"]["channels"]["mute-http"]
    assert channel["protocol"] == "http" and channel["state"] == "connected" and channel["circuit"] == "closed"
    assert live_gateways(sync, namespace) == {}  # a stopped role removes its heartbeat
    reports = [e for e in _events(redis_url, namespace) if getattr(e, "status", None)]
    assert sorted(e.message_id for e in reports) == sorted(m.id for m in messages)  # exactly one each
    assert {(e.status, e.carrier_code) for e in reports} == {("unknown", "no_receipt")}


def test_an_in_doubt_message_adopts_a_receipt_reporting_the_number_without_plus(redis_url: str,
                                                                                 namespace: str) -> None:
    """SMPP peers report ``8613800138000`` for our ``+8613800138000``: the orphan must still be found, or the
    message is sent a second time (found by tests/smsguard/test_three_hosts.py)."""
    specs = [ChannelSpec(name="sm", protocol="loopback")]
    message = OutboundMessage("e1", "+8613800138000", "text")

    async def main() -> tuple[str, dict[str, str]]:
        r = redis_client(redis_url)
        store = ChannelStore(r, namespace, specs)
        await store.ensure_groups()
        await store.enqueue([message])
        assert await store.begin(message, "sm") == "go"  # submitted, response lost in a crash
        await store.on_receipt(Receipt("sm", "gw-77", "8613800138000", "delivered", "DELIVRD"))
        outcome = await store.resolve_in_doubt(message, "sm")
        state = await store.state("e1")
        await r.aclose()
        return outcome, state

    outcome, state = run(main())
    assert outcome == "delivered" and state["state"] == "delivered" and state["gw_ids"] == "gw-77"
