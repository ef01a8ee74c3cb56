"""Throttle, retry, circuit breaker, failover, receipt mapping and the worker, on a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from sending_helpers import make_gateway, run
from sending_peers.doubles import MemorySink
from sending_peers.processes import cmpp_peer, free_port

from smsguard.sending import (
    Channel,
    CircuitBreaker,
    EventRelay,
    GatewayWorker,
    LocalThrottle,
    LoopbackGateway,
    MessageStore,
    OutboundMessage,
    Receipt,
    RedisThrottle,
    RetryPolicy,
    Router,
    SubmitResult,
    carrier_of,
    is_opt_out,
)

FAST_RETRY = RetryPolicy(max_attempts=3, base=0.01, max_delay=0.05)


# -- pure pieces ----------------------------------------------------------------------------------------


def test_carrier_of_routes_by_number_range() -> None:
    assert carrier_of("13800138000") == "mobile"
    assert carrier_of("+8618612345678") == "unicom"
    assert carrier_of("8618912345678") == "telecom"
    assert carrier_of("17001234567") == "telecom" and carrier_of("17041234567") == "unicom"
    assert carrier_of("02161234567") == "other"


def test_opt_out_keywords() -> None:
    assert all(is_opt_out(t) for t in ["TD", "t", " 退订 ", "取消", "STOP", "Unsubscribe", "R", "n。"])
    assert not any(is_opt_out(t) for t in ["好的", "TDX", "不要退订", "stop it"])


def test_circuit_breaker_opens_on_error_rate_and_recovers() -> None:
    now = [0.0]
    breaker = CircuitBreaker(error_rate=0.5, window=10, min_calls=4, open_for=5.0, clock=lambda: now[0])
    for ok in (True, False, True, False):
        assert breaker.allow()
        breaker.success() if ok else breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 5.0
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.failure()
    assert breaker.state == "open"
    now[0] = 10.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.opened == 2
    breaker.failure(down=True)
    assert breaker.state == "open"


def test_retry_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base=0.1, factor=2, max_delay=0.5, jitter=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]


# -- throttle -------------------------------------------------------------------------------------------


def test_redis_throttle_is_shared_across_workers_and_accurate(redis_url: str, namespace: str) -> None:
    """Three independent clients (as three workers would be) share one 300/s budget within 5%."""

    async def go() -> tuple[int, float]:
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(3)]
        throttles = [RedisThrottle(c, f"{namespace}:throttle:ch", 300.0) for c in clients]
        sent: list[float] = []
        end = time.monotonic() + 1.5

        async def worker(t: RedisThrottle) -> None:
            while time.monotonic() < end:
                await t.acquire(5)
                sent.extend([time.monotonic()] * 5)

        await asyncio.gather(*(worker(t) for t in throttles))
        for c in clients:
            await c.aclose()
        return len(sent), max(sent) - min(sent)

    count, span = run(go())
    rate = (count - 5) / span  # the first batch goes at t=0
    assert abs(rate - 300) / 300 < 0.05, rate


def test_local_throttle_is_accurate() -> None:
    """On its own clock (a busy machine oversleeps; that is not the throttle's error): 400 messages at 500/s
    take 0.798 s of waiting, one interval per message after the first pair."""
    now = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    async def go() -> None:
        t = LocalThrottle(500.0, clock=lambda: now[0], sleep=sleep)
        for _ in range(200):
            await t.acquire(2)

    run(go())
    assert now[0] - 100.0 == pytest.approx(199 * 2 / 500)
    assert all(w == pytest.approx(0.004) for w in waits) and len(waits) == 199


def test_local_throttle_never_exceeds_its_rate_on_the_real_clock() -> None:
    async def go() -> float:
        t = LocalThrottle(500.0)
        start = time.monotonic()
        for _ in range(100):
            await t.acquire(2)
        return 200 / (time.monotonic() - start)

    assert run(go()) <= 500 * 1.02 * 200 / 198  # the first pair goes at once


# -- store: receipts map back, restart loses none -------------------------------------------------------


def test_receipt_before_its_submit_response_is_not_lost(redis_url: str, namespace: str) -> None:
    """A receipt whose gateway id is not recorded yet is parked; recording the id applies it, also
    from a fresh store object (a restarted process)."""

    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        await store.ensure_groups()
        msg = OutboundMessage("m1", "13800000001", "hello")
        await store.enqueue([msg])
        assert await store.begin(msg, "gw") == "go"
        await store.on_receipt(Receipt("gw", "G-1", msg.phone, "delivered", "DELIVRD"))
        assert (await store.state("m1"))["state"] == "sending"
        restarted = MessageStore(aioredis.Redis.from_url(redis_url), namespace)
        assert await restarted.record_submitted(SubmitResult("m1", "gw", ("G-1",))) == "delivered"
        # a repeated receipt (the peer re-sent it) changes nothing and emits nothing
        await restarted.on_receipt(Receipt("gw", "G-1", msg.phone, "delivered", "DELIVRD"))
        sink = MemorySink()
        relay = EventRelay(restarted, sink)
        assert await relay.run_once(block_ms=10) == 2  # the gateway took it (sent), then its one report
        assert await relay.run_once(block_ms=10) == 0
        assert sink.sent["m1"].gateway_ids == ("G-1",) and len(sink.reports) == 1
        report = sink.reports["m1"]
        assert (report.status, report.phone, report.gateway_ids) == ("delivered", "13800000001", ("G-1",))
        await r.aclose()
        await restarted.redis.aclose()

    run(go())


def test_multipart_outcome_waits_for_every_part_and_failure_wins(redis_url: str, namespace: str) -> None:
    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        await store.ensure_groups()
        msg = OutboundMessage("m2", "13800000002", "long")
        await store.enqueue([msg])
        await store.begin(msg, "gw")
        await store.record_submitted(SubmitResult("m2", "gw", ("A", "B", "C")))
        await store.on_receipt(Receipt("gw", "A", msg.phone, "delivered", "DELIVRD"))
        await store.on_receipt(Receipt("gw", "B", msg.phone, "failed", "UNDELIV:005"))
        assert (await store.state("m2"))["state"] == "submitted"
        await store.on_receipt(Receipt("gw", "C", msg.phone, "delivered", "DELIVRD"))
        state = await store.state("m2")
        assert (state["state"], state["carrier_code"]) == ("failed", "UNDELIV:005")
        await r.aclose()

    run(go())


# -- the worker -----------------------------------------------------------------------------------------


async def _drain(store: MessageStore, worker: GatewayWorker, sink: MemorySink, ids: set[str], timeout: float) -> None:
    stop = asyncio.Event()
    relay = EventRelay(store, sink)
    relay_task = asyncio.create_task(relay.run(stop))
    work_task = asyncio.create_task(worker.run(stop))
    try:
        await sink.wait_for(lambda: ids <= set(sink.reports), timeout)
    finally:
        stop.set()
        await asyncio.gather(relay_task, work_task)


def test_worker_maps_every_outcome_and_mo_opt_out(redis_url: str, namespace: str) -> None:
    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        gw = LoopbackGateway("lb", window=8)
        worker = GatewayWorker(store, [Channel(gw)], Router({"default": ["lb"]}), retry=FAST_RETRY)
        await worker.start()
        phones = {"ok": "13800000000", "thr": "13800009001", "rej": "13800009002", "und": "13800009003",
                  "exp": "13800009004"}
        msgs = [OutboundMessage(k, p, f"text {k}") for k, p in phones.items()]
        msgs.append(OutboundMessage("mo", "13800000777", "MO:退订"))
        await store.enqueue(msgs)
        sink = MemorySink()
        await _drain(store, worker, sink, {m.id for m in msgs}, 10)
        got = {k: (v.status, v.carrier_code) for k, v in sink.reports.items()}
        assert got["ok"] == ("delivered", "DELIVRD") and got["thr"] == ("delivered", "DELIVRD")
        assert got["rej"] == ("failed", "loopback:rejected")
        assert got["und"] == ("failed", "UNDELIV") and got["exp"] == ("expired", "EXPIRED")
        await sink.wait_for(lambda: sink.opted_out, 5)
        assert sink.opted_out == {"13800000777"}
        assert worker.stats["retries"] == 2 and worker.stats["rejected"] == 1
        await worker.close()
        await r.aclose()

    run(go())


def test_failover_to_backup_when_primary_is_down_and_back_when_it_recovers(redis_url: str, namespace: str) -> None:
    """The mobile route prefers CMPP; while its ISMG is down traffic fails over to the backup; once the
    ISMG is up the circuit's probe succeeds and traffic returns."""

    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        port = free_port()
        primary = make_gateway("cmpp", port, name="cmpp-main")
        backup = LoopbackGateway("backup")
        channels = [Channel(primary, breaker=CircuitBreaker(open_for=0.3)), Channel(backup)]
        worker = GatewayWorker(store, channels, Router({"mobile": ["cmpp-main", "backup"], "default": ["backup"]}),
                               retry=FAST_RETRY)
        await worker.start()  # the ISMG is not running: the primary is down
        assert not primary.connected
        first = [OutboundMessage(f"a{i}", "13800000000", f"first {i}") for i in range(20)]
        await store.enqueue(first)
        sink = MemorySink()
        await _drain(store, worker, sink, {m.id for m in first}, 10)
        assert {sink.reports[m.id].gateway for m in first} == {"backup"}
        assert channels[0].breaker.opened >= 1

        with cmpp_peer(port=port) as peer:
            peer.start()
            for _ in range(50):  # the worker keeps trying to start a channel that was down
                if primary.connected:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.35)  # past open_for: the next message is the half-open probe
            second = [OutboundMessage(f"b{i}", "13800000000", f"second {i}") for i in range(20)]
            await store.enqueue(second)
            await _drain(store, worker, sink, {m.id for m in second}, 10)
            assert "cmpp-main" in {sink.reports[m.id].gateway for m in second}  # others went on during the probe
            assert channels[0].breaker.state == "closed"
            third = [OutboundMessage(f"c{i}", "13800000000", f"third {i}") for i in range(20)]
            await store.enqueue(third)
            await _drain(store, worker, sink, {m.id for m in third}, 10)
            assert {sink.reports[m.id].gateway for m in third} == {"cmpp-main"}
            await worker.close()
        await r.aclose()

    run(go())


def test_error_rate_opens_the_circuit_and_fails_over(redis_url: str, namespace: str) -> None:
    """A channel that keeps answering "throttled" trips its breaker; the rest goes to the backup."""

    class Flaky(LoopbackGateway):
        async def _submit(self, message: OutboundMessage) -> SubmitResult:
            from smsguard.sending import TransientGatewayError

            raise TransientGatewayError("busy", where=self.where, carrier_code="test:busy")

    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        flaky = Channel(Flaky("flaky"), breaker=CircuitBreaker(error_rate=0.5, min_calls=5, open_for=60))
        worker = GatewayWorker(store, [flaky, Channel(LoopbackGateway("backup"))],
                               Router({"default": ["flaky", "backup"]}), retry=FAST_RETRY)
        await worker.start()
        msgs = [OutboundMessage(f"e{i}", "13800000000", f"m {i}") for i in range(30)]
        await store.enqueue(msgs)
        sink = MemorySink()
        await _drain(store, worker, sink, {m.id for m in msgs}, 10)
        assert {v.gateway for v in sink.reports.values()} == {"backup"}
        assert flaky.breaker.state == "open"
        await worker.close()
        await r.aclose()

    run(go())


@pytest.mark.parametrize("window", [1, 16])
def test_window_is_configurable_end_to_end(redis_url: str, namespace: str, window: int) -> None:
    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        with cmpp_peer() as peer:
            peer.start()
            gw = make_gateway("cmpp", peer.port, window=window)
            worker = GatewayWorker(store, [Channel(gw)], Router({"default": ["cmpp"]}))
            await worker.start()
            msgs = [OutboundMessage(f"w{i}", "13800000000", f"w {i}") for i in range(100)]
            await store.enqueue(msgs)
            sink = MemorySink()
            await _drain(store, worker, sink, {m.id for m in msgs}, 20)
            assert all(v.status == "delivered" for v in sink.reports.values())
            await worker.close()
        await r.aclose()

    run(go())
