"""One contract, every gateway: SMPP (npm `smpp` SMSC), CMPP 3.0 and CMPP 2.0 (our ISMG simulator, one run
as 3.0, one 2.0-only), SMGP 3.0 and SGIP 1.2 (our SMGW / SMG simulators; SGIP's connects back to the
adapter for Report and Deliver), HTTP (our JSON provider), each a real separate process over TCP on
127.0.0.1, plus the in-process loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sending_helpers import PEERS, make_gateway, run
from sending_peers.doubles import MemoryEvents
from sending_peers.processes import PeerError, cmpp_peer, smpp_peer

from smsguard.sending import (
    Gateway,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
    SubmitInDoubt,
    TransientGatewayError,
)

Factory = Callable[..., Gateway]
THROTTLE_CODES = {
    "smpp": "smpp:0x58",
    "cmpp": "cmpp:8",
    "cmpp2": "cmpp:8",
    "smgp": "smgp:1",
    "sgip": "sgip:11",
    "http": "http:429:429",
    "loopback": "loopback:throttled",
}
LONG_TEXT = "【示例商城】" + "双十一大促全场五折起，详情请见会员中心。" * 7 + "回T退订"  # > 134 UCS-2 octets × 2


async def _started(factory: Factory, **options: object) -> tuple[Gateway, MemoryEvents]:
    gw = factory(**options)
    events = MemoryEvents()
    await gw.start(events)
    return gw, events


def test_submit_then_delivered_receipt(gateway_factory: Factory) -> None:
    async def go() -> None:
        gw, events = await _started(gateway_factory)
        try:
            result = await gw.submit(OutboundMessage("m-ok", "13800138000", "【示例银行】您的验证码是123456"))
            assert result.message_id == "m-ok" and len(result.gateway_ids) == 1 and result.gateway_ids[0]
            await events.wait_for(lambda: any(r.gateway_id == result.gateway_ids[0] for r in events.receipts))
            receipt = next(r for r in events.receipts if r.gateway_id == result.gateway_ids[0])
            assert (receipt.status, receipt.phone, receipt.gateway) == ("delivered", "13800138000", gw.name)
        finally:
            await gw.close()

    run(go())


def test_long_message_goes_in_parts_each_with_a_receipt(gateway_factory: Factory) -> None:
    async def go() -> None:
        gw, events = await _started(gateway_factory)
        try:
            result = await gw.submit(OutboundMessage("m-long", "13800138001", LONG_TEXT))
            if gw.kind == "http":  # an HTTP provider splits the text itself: one id
                assert len(result.gateway_ids) == 1
            else:
                assert len(result.gateway_ids) == -(-len(LONG_TEXT) // 67) >= 3
            ids = set(result.gateway_ids)
            await events.wait_for(lambda: ids <= {r.gateway_id for r in events.receipts})
        finally:
            await gw.close()

    run(go())


def test_throttled_is_transient_and_then_accepted(gateway_factory: Factory) -> None:
    async def go() -> None:
        gw, _ = await _started(gateway_factory)
        msg = OutboundMessage("m-thr", "13800009001", f"throttle me {gw.kind}")
        try:
            for _ in range(2):
                with pytest.raises(TransientGatewayError) as caught:
                    await gw.submit(msg)
                assert caught.value.transient
                assert caught.value.carrier_code == THROTTLE_CODES[gw.kind]
            assert (await gw.submit(msg)).gateway_ids
        finally:
            await gw.close()

    run(go())


REFUSALS = [("smpp", "smpp:0x0b"), ("cmpp", "cmpp:9"), ("smgp", "smgp:39"), ("sgip", "sgip:6"),
            ("http", "http:200:1003")]


@pytest.mark.parametrize("kind_code", REFUSALS)
def test_permanent_refusal_carries_the_carrier_code(peers: dict, kind_code: tuple[str, str]) -> None:
    kind, code = kind_code
    if kind not in peers:
        peers[kind] = PEERS[kind]().start()

    async def go() -> None:
        gw = make_gateway(kind, peers[kind].port, sp_port=peers[kind].sp_port)
        await gw.start(MemoryEvents())
        try:
            with pytest.raises(PermanentGatewayError) as caught:
                await gw.submit(OutboundMessage("m-rej", "13800009002", "no such number"))
            assert caught.value.carrier_code == code and not caught.value.transient
            assert caught.value.to_dict()["code"] == "gateway.rejected"
        finally:
            await gw.close()

    run(go())


def test_failed_and_expired_receipts(gateway_factory: Factory) -> None:
    async def go() -> None:
        gw, events = await _started(gateway_factory)
        try:
            failed = await gw.submit(OutboundMessage("m-f", "13800009003", "will fail"))
            expired = await gw.submit(OutboundMessage("m-e", "13800009004", "will expire"))
            want = {failed.gateway_ids[0], expired.gateway_ids[0]}
            await events.wait_for(lambda: want <= {r.gateway_id for r in events.receipts})
            by_id = {r.gateway_id: r for r in events.receipts}
            f, e = by_id[failed.gateway_ids[0]], by_id[expired.gateway_ids[0]]
            assert f.status == "failed" and f.carrier_code not in ("", "DELIVRD")
            # SGIP 1.2's Report has no "expired" state (State 2 = failed, with an ErrorCode)
            assert e.status == ("failed" if gw.kind == "sgip" else "expired") and e.phone == "13800009004"
        finally:
            await gw.close()

    run(go())


def test_mo_reply_flows_in_and_opt_outs_are_recognised(gateway_factory: Factory) -> None:
    async def go() -> None:
        gw, events = await _started(gateway_factory)
        try:
            await gw.submit(OutboundMessage("m-mo1", "13900000011", "MO:TD"))
            await gw.submit(OutboundMessage("m-mo2", "13900000012", "MO:你好，收到了"))
            await events.wait_for(lambda: {"13900000011", "13900000012"} <= {m.phone for m in events.inbound})
            by_phone = {m.phone: m for m in events.inbound}
            assert by_phone["13900000011"].text == "TD" and by_phone["13900000011"].opt_out
            assert by_phone["13900000012"].text == "你好，收到了" and not by_phone["13900000012"].opt_out
        finally:
            await gw.close()

    run(go())


def test_window_bounds_in_flight_submits(gateway_factory: Factory) -> None:
    async def go() -> None:
        gw, events = await _started(gateway_factory, window=4)
        in_flight = peak = 0
        original = gw._submit

        async def counting(message: OutboundMessage):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await original(message)
            finally:
                in_flight -= 1

        gw._submit = counting  # type: ignore[method-assign]
        try:
            results = await asyncio.gather(
                *(gw.submit(OutboundMessage(f"w{i}", f"1380000{i:04d}", f"window {i}")) for i in range(60))
            )
            assert len({r.gateway_ids[0] for r in results}) == 60
            assert peak == 4 if gw.kind != "loopback" else peak <= 4  # loopback never yields mid-submit
            ids = {r.gateway_ids[0] for r in results}
            await events.wait_for(lambda: ids <= {r.gateway_id for r in events.receipts})
        finally:
            await gw.close()

    run(go())


def test_bad_credentials_are_refused() -> None:
    async def go() -> None:
        from smsguard.sending import CmppGateway, SmppGateway

        with cmpp_peer() as cp:
            cp.start()
            gw = CmppGateway("bad", "127.0.0.1", cp.port, "901234", "wrong")
            with pytest.raises(GatewayUnavailable) as caught:
                await gw.start(MemoryEvents())
            assert caught.value.carrier_code == "cmpp:3"
        with smpp_peer() as sp:
            sp.start()
            gw2 = SmppGateway("bad", "127.0.0.1", sp.port, "smsguard", "wrong")
            with pytest.raises(GatewayUnavailable):
                await gw2.start(MemoryEvents())

    run(go())


def test_keepalive_enquire_link_and_active_test() -> None:
    """SMPP sends enquire_link when idle; CMPP sends and answers ACTIVE_TEST; the links stay up."""

    async def go() -> None:
        with smpp_peer() as sp, cmpp_peer(active_test=0.1) as cp:
            sp.start()
            cp.start()
            smpp = make_gateway("smpp", sp.port, enquire_link_interval=0.1)
            cmpp = make_gateway("cmpp", cp.port, active_test_interval=0.1)
            await smpp.start(MemoryEvents())
            await cmpp.start(MemoryEvents())
            await asyncio.sleep(0.6)
            assert smpp.enquire_links_sent >= 2  # type: ignore[attr-defined]
            assert cmpp.stats["active_tests_answered"] >= 2  # type: ignore[attr-defined]
            assert smpp.connected and cmpp.connected
            assert (await smpp.submit(OutboundMessage("k1", "13800000001", "still up"))).gateway_ids
            assert (await cmpp.submit(OutboundMessage("k2", "13800000001", "still up"))).gateway_ids
            await smpp.close()
            await cmpp.close()

    run(go())


def test_cmpp_client_sends_active_test_when_idle() -> None:
    async def go() -> None:
        with cmpp_peer() as cp:
            cp.start()
            gw = make_gateway("cmpp", cp.port, active_test_interval=0.05)
            await gw.start(MemoryEvents())
            await asyncio.sleep(0.4)
            assert gw.stats["active_tests_sent"] >= 2 and gw.connected  # type: ignore[attr-defined]
            await gw.close()

    run(go())


@pytest.mark.parametrize("kind", ["smpp", "cmpp", "smgp", "http"])
def test_peer_killed_then_back_the_gateway_reconnects(kind: str) -> None:
    async def go() -> None:
        start = PEERS[kind]
        peer = start().start()
        gw = make_gateway(kind, peer.port)
        await gw.start(MemoryEvents())
        try:
            assert (await gw.submit(OutboundMessage("r1", "13800000001", "before"))).gateway_ids
            peer.kill()
            await asyncio.sleep(0.2)
            with pytest.raises((GatewayUnavailable, SubmitInDoubt)):
                await gw.submit(OutboundMessage("r2", "13800000001", "while down"))
            peer = start(port=peer.port).start()
            for _ in range(100):
                if gw.connected:
                    try:
                        assert (await gw.submit(OutboundMessage("r3", "13800000001", "after"))).gateway_ids
                        break
                    except GatewayUnavailable:
                        pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("gateway did not reconnect")
        finally:
            await gw.close()
            peer.stop()

    try:
        run(go())
    except PeerError as e:
        pytest.fail(str(e))
