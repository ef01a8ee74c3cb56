"""The failures users report on other gateways, each with the peer process scripted to do it
(``sending_peers/script.py``; the npm SMPP peer's ``--receipt-id``).

Issues seen in SMSGate and Kannel threads: SMSC answers out of order, receipts for only one part of a
long message, the same segment twice, parts of a long MO over different connections, Msg_Id spelled
in hex / decimal / with leading zeros / all zeros, receipts silently off, retry storms on "throttled",
and the receipt that overtakes its own submit response.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from sending_helpers import make_gateway, run
from sending_peers.doubles import MemoryEvents, MemorySink
from sending_peers.processes import Peer, cmpp_peer, sgip_peer, smgp_peer, smpp_peer
from sending_peers.script import LONG_REPLY, Script

from smsguard.sending import (
    Channel,
    CmppGateway,
    EventRelay,
    GatewayWorker,
    MessageStore,
    OutboundMessage,
    RetryPolicy,
    Router,
    SgipGateway,
    SmgpGateway,
    TransientGatewayError,
)
from smsguard.sending._cmpp_client import UNMATCHABLE
from smsguard.sending._long_sms import Reassembler

BINARY = {"cmpp": cmpp_peer, "smgp": smgp_peer, "sgip": sgip_peer}
LONG = "【示例商城】" + "双十一大促全场五折起，详情请见会员中心。" * 7 + "回T退订"


def _peer(kind: str, script: Script) -> Peer:
    return BINARY[kind](script=script).start()


def _gateway(kind: str, peer: Peer, **options: object):  # type: ignore[no-untyped-def]
    return make_gateway(kind, peer.port, sp_port=peer.sp_port, **options)


async def _through_the_worker(gw, redis_url: str, namespace: str, msgs: list[OutboundMessage]):  # type: ignore[no-untyped-def]
    """Run the real outbox → worker → store → relay path until every message has a report (or 10 s)."""
    r = aioredis.Redis.from_url(redis_url)
    store = MessageStore(r, namespace)
    worker = GatewayWorker(store, [Channel(gw)], Router({"default": [gw.name]}),
                           retry=RetryPolicy(max_attempts=5, base=0.01, max_delay=0.05))
    await worker.start()
    await store.enqueue(msgs)
    sink = MemorySink()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(EventRelay(store, sink).run(stop))]
    with contextlib.suppress(TimeoutError):  # the caller asserts on what arrived
        await sink.wait_for(lambda: {m.id for m in msgs} <= set(sink.reports), 10)
    states = {m.id: await store.state(m.id) for m in msgs}
    stop.set()
    await asyncio.gather(*tasks)
    await worker.close()
    await r.aclose()
    return sink, states


# -- submit responses out of order ----------------------------------------------------------------------


def test_submit_responses_out_of_order_go_to_the_right_messages() -> None:
    async def go() -> None:
        with cmpp_peer(script=Script(reorder=8)) as peer:
            peer.start()
            gw = make_gateway("cmpp", peer.port, window=16)
            events = MemoryEvents()
            await gw.start(events)
            msgs = [OutboundMessage(f"o{i}", f"1380013{i:04d}", f"order {i}") for i in range(40)]
            results = await asyncio.gather(*(gw.submit(m) for m in msgs))
            ids = {r.gateway_ids[0]: m.phone for r, m in zip(results, msgs, strict=True)}
            await events.wait_for(lambda: set(ids) <= {r.gateway_id for r in events.receipts})
            # the receipt of each id is about that message's own number: no response was paired wrongly
            assert all(ids[r.gateway_id] == r.phone for r in events.receipts)
            await gw.close()

    run(go())


# -- the receipt before the submit response ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cmpp", "smgp", "sgip"])
def test_receipt_before_the_submit_response_is_kept_and_mapped(kind: str, redis_url: str, namespace: str) -> None:
    async def go() -> None:
        with _peer(kind, Script(receipt_first=True)) as peer:
            gw = _gateway(kind, peer)
            msgs = [OutboundMessage(f"rf{i}", f"1390000{i:04d}", f"early {i}") for i in range(20)]
            sink, states = await _through_the_worker(gw, redis_url, namespace, msgs)
            assert {s["state"] for s in states.values()} == {"delivered"}
            assert {r.status for r in sink.reports.values()} == {"delivered"} and len(sink.reports) == 20

    run(go())


# -- receipts for only some parts ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cmpp", "smgp", "sgip"])
def test_receipts_for_only_the_first_part_never_claim_the_whole_message(
    kind: str, redis_url: str, namespace: str
) -> None:
    """The part that was reported is recorded; the message stays "submitted" (awaiting), neither
    claimed delivered on one part's word nor lost."""

    async def go() -> None:
        with _peer(kind, Script(partial_receipts=True)) as peer:
            gw = _gateway(kind, peer)
            r = aioredis.Redis.from_url(redis_url)
            store = MessageStore(r, namespace)
            events = MemoryEvents()
            await gw.start(events)
            msg = OutboundMessage("pr1", "13900001234", LONG)
            await store.enqueue([msg])
            assert await store.begin(msg, gw.name) == "go"
            result = await gw.submit(msg)
            await store.record_submitted(result)
            await events.wait_for(lambda: any(x.gateway_id == result.gateway_ids[0] for x in events.receipts))
            for receipt in events.receipts:
                await store.on_receipt(receipt)
            state = await store.state("pr1")
            assert len(result.gateway_ids) >= 3 and state["state"] == "submitted"
            assert state[f"p:{result.gateway_ids[0]}"] == "delivered"
            assert {x.gateway_id for x in events.receipts} == {result.gateway_ids[0]}
            await gw.close()
            await r.aclose()

    run(go())


# -- long MO: the same segment twice, parts over different connections --------------------------------------


@pytest.mark.parametrize("kind", ["cmpp", "smgp", "sgip"])
def test_long_mo_with_a_segment_twice_arrives_once_and_whole(kind: str) -> None:
    async def go() -> None:
        with _peer(kind, Script(duplicate_mo_part=True)) as peer:
            gw = _gateway(kind, peer)
            events = MemoryEvents()
            await gw.start(events)
            await gw.submit(OutboundMessage("mo1", "13900005678", "MO:LONG"))
            await events.wait_for(lambda: bool(events.inbound))
            await asyncio.sleep(0.2)  # a second, duplicated message would arrive by now
            assert [m.text for m in events.inbound] == [LONG_REPLY]
            assert gw.reassembler.duplicates == 1  # type: ignore[attr-defined]
            await gw.close()

    run(go())


def test_sgip_long_mo_over_two_connections_back_is_joined() -> None:
    """Unicom's SMG connects to us; here it opens two connections and sends the parts over both, reversed."""

    async def go() -> None:
        with sgip_peer(script=Script(spread_mo=True)) as peer:
            peer.start()
            gw = _gateway("sgip", peer)
            assert isinstance(gw, SgipGateway)
            events = MemoryEvents()
            await gw.start(events)
            await gw.submit(OutboundMessage("mo2", "13900005679", "MO:LONG"))
            await events.wait_for(lambda: bool(events.inbound))
            assert [m.text for m in events.inbound] == [LONG_REPLY] and gw.stats["smg_binds"] == 2
            await gw.close()

    run(go())


def test_cmpp_long_mo_over_two_connections_is_joined_by_a_shared_reassembler() -> None:
    """Two connections (two adapters on one account, as a channel with two links has) share one Reassembler."""

    async def go() -> None:
        with cmpp_peer(script=Script(spread_mo=True)) as peer:
            peer.start()
            shared = Reassembler()
            events = MemoryEvents()
            links = [make_gateway("cmpp", peer.port, name=f"cmpp-{i}") for i in range(2)]
            for link in links:
                link.reassembler = shared  # type: ignore[attr-defined]
                await link.start(events)
            await links[0].submit(OutboundMessage("mo3", "13900005680", "MO:LONG"))
            await events.wait_for(lambda: bool(events.inbound))
            assert [m.text for m in events.inbound] == [LONG_REPLY]
            assert {m.gateway for m in events.inbound} <= {"cmpp-0", "cmpp-1"}
            for link in links:
                await link.close()

    run(go())


# -- message id spellings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("receipt_id", ["decimal", "padded"])
def test_smpp_receipt_id_in_decimal_or_with_leading_zeros_matches_the_hex_submit_id(receipt_id: str) -> None:
    async def go() -> None:
        with smpp_peer(receipt_id=receipt_id) as peer:
            peer.start()
            gw = make_gateway("smpp", peer.port, submit_id_form="hex", receipt_id_form="dec")
            events = MemoryEvents()
            await gw.start(events)
            result = await gw.submit(OutboundMessage("id1", "13800138000", "ids"))
            await events.wait_for(lambda: any(r.gateway_id == result.gateway_ids[0] for r in events.receipts))
            await gw.close()

    run(go())


def test_smpp_ids_compared_as_sent_do_not_match_across_spellings() -> None:
    """Why the forms are configuration: without them the decimal receipt maps to nothing (an orphan)."""

    async def go() -> None:
        with smpp_peer(receipt_id="decimal") as peer:
            peer.start()
            gw = make_gateway("smpp", peer.port)
            events = MemoryEvents()
            await gw.start(events)
            result = await gw.submit(OutboundMessage("id2", "13800138000", "ids"))
            await events.wait_for(lambda: bool(events.receipts))
            assert events.receipts[0].gateway_id != result.gateway_ids[0]
            await gw.close()

    run(go())


def test_cmpp_all_zero_msg_id_is_accepted_but_never_joined_to_a_receipt(redis_url: str, namespace: str) -> None:
    async def go() -> None:
        with cmpp_peer(script=Script(zero_msg_id=True)) as peer:
            peer.start()
            gw = make_gateway("cmpp", peer.port)
            events = MemoryEvents()
            await gw.start(events)
            a = await gw.submit(OutboundMessage("z1", "13800000001", "zero a"))
            b = await gw.submit(OutboundMessage("z2", "13800000002", "zero b"))
            # accepted (not rejected, not retried), and the two never share an id
            assert a.gateway_ids[0].startswith(UNMATCHABLE) and a.gateway_ids != b.gateway_ids
            await events.wait_for(lambda: len(events.receipts) >= 2)
            assert not {r.gateway_id for r in events.receipts} & {*a.gateway_ids, *b.gateway_ids}
            await gw.close()

    run(go())


def test_cmpp_msg_id_with_leading_zero_bits_keeps_one_spelling() -> None:
    from smsguard.sending import _cmpp_protocol as p

    small = 0x1234  # month/day/time all zero: the high bytes are 0
    assert p.msg_id_text(small) == "0000000000001234"
    report = p.decode_report(p.encode_report(p.StatusReport(small, "DELIVRD", "", "", "13800138000"), p.V30), p.V30)
    assert p.msg_id_text(report.msg_id) == p.msg_id_text(small)


# -- receipts on by default ---------------------------------------------------------------------------------


def test_receipts_are_asked_for_by_default() -> None:
    msg = OutboundMessage("rd", "13800138000", LONG)
    cmpp = CmppGateway("c", "127.0.0.1", 1, "901234", "s")
    smgp = SmgpGateway("t", "127.0.0.1", 1, "10690001", "s")
    sgip = SgipGateway("u", "127.0.0.1", 1, "sp", "s", node_id=3010012345)
    assert {pdu.registered_delivery for pdu in cmpp._submit_pdus(msg)} == {1}
    assert {pdu.need_report for pdu in smgp._submit_pdus(msg)} == {1}
    assert {pdu.report_flag for pdu in sgip._submit_pdus(msg)} == {1}  # 1 = always (0 would be failures only)


# -- throttled: pause the channel, no retry storm -----------------------------------------------------------


async def _refusals(kind: str, pause: float) -> tuple[int, int]:
    """(refusals seen, pauses) for 48 submits, each retried at once when throttled, window 16."""
    with _peer(kind, Script(throttle_for=0.6)) as peer:
        gw = _gateway(kind, peer, window=16, throttle_pause=pause)
        await gw.start(MemoryEvents())
        refused = 0

        async def send(i: int) -> None:
            nonlocal refused
            while True:
                try:
                    await gw.submit(OutboundMessage(f"t{i}", f"1380{i:03d}8001", f"busy {i}"))
                    return
                except TransientGatewayError:
                    refused += 1

        await asyncio.gather(*(send(i) for i in range(48)))
        await gw.close()
        return refused, gw.pauses


@pytest.mark.parametrize("kind", ["cmpp", "smgp", "sgip"])
def test_a_throttled_result_pauses_the_whole_channel_instead_of_a_retry_storm(kind: str) -> None:
    async def go() -> None:
        paused, pauses = await _refusals(kind, pause=0.25)
        storm, _ = await _refusals(kind, pause=0.0)
        # With the pause each 0.25 s lets at most one window (16) through to be refused again; without it
        # every submit hammers the peer for the whole 0.6 s.
        assert pauses >= 2 and paused <= 16 * 4
        assert storm > 3 * paused

    run(go())


def test_a_throttled_part_of_a_long_message_is_resent_alone() -> None:
    """Part 2 of 3 is throttled twice while parts 1 and 3 are taken: re-sending the whole message would
    send parts 1 and 3 twice, so only part 2 goes again (after the channel's pause)."""

    async def go() -> None:
        with cmpp_peer(script=Script(throttle_part=2)) as peer:
            peer.start()
            gw = make_gateway("cmpp", peer.port, throttle_pause=0.05)
            events = MemoryEvents()
            await gw.start(events)
            result = await gw.submit(OutboundMessage("tp1", "13900004321", LONG))
            ids = set(result.gateway_ids)
            assert len(ids) == len(result.gateway_ids) >= 3
            await events.wait_for(lambda: ids <= {r.gateway_id for r in events.receipts})
            await asyncio.sleep(0.2)
            assert len(events.receipts) == len(ids)  # one accepted copy of each part, no more
            await gw.close()

    run(go())



def test_a_response_never_answered_is_in_doubt_after_its_timeout_and_forgotten() -> None:
    """The adapters' response timeouts (one deadline heap per connection, no timer per PDU): an unanswered
    request fails with the adapter's error once its own timeout passes and leaves ``pending`` (a late answer
    matches nothing); an answered one is left alone; a shorter timeout added later still fires first."""
    from smsguard.sending import SubmitInDoubt
    from smsguard.sending._gateway import ResponseDeadlines, responses

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = ResponseDeadlines(lambda: SubmitInDoubt("no submit response in time"))
        pending: dict[int, asyncio.Future[str]] = {n: loop.create_future() for n in (1, 2, 3, 4)}
        deadlines.add(pending, 1, pending[1], 0.1)
        deadlines.add(pending, 2, pending[2], 60.0)
        deadlines.add(pending, 3, pending[3], 0.2)  # answered before its deadline
        pending.pop(3).set_result("ok")
        with pytest.raises(SubmitInDoubt):
            await responses([pending[1], pending[2]])  # the first error, as gather gives it
        assert 1 not in pending and 2 in pending
        deadlines.add(pending, 4, pending[4], 0.05)  # shorter than the 60 s the sweeper sleeps on
        with pytest.raises(SubmitInDoubt):
            await pending[4]
        assert set(pending) == {2}
        deadlines.close()

    run(scenario(), timeout=30)
