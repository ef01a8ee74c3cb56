"""The customer-facing CMPP server (ISMG side), against our own client and two independent ones.

The :class:`SubmitHandler` here decides by number (last four digits 0020 block, 0021 opted out), so
these tests pin the PROTOCOL side: authentication, versions, limits, the result mapping, long
messages screened whole, reports kept until the customer reconnects. Wiring the handler to the
screening engine, opt-outs, caps, budget and channels (and a ``serve`` role) is not done yet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest
from sending_helpers import run
from sending_peers.doubles import MemoryEvents

from smsguard.sending import (
    CmppGateway,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
    TransientGatewayError,
)
from smsguard.sending import _cmpp_protocol as p
from smsguard.sending._cmpp_server import CmppAccount, CmppServer, CustomerSubmit, Decision

ACCOUNT = CmppAccount("123456", "s3cret", tenant="acme", max_connections=2, window=8, rate=500.0)
LONG = "【示例商城】" + "双十一大促全场五折起，详情请见会员中心。" * 7 + "回T退订"


class _ByNumber:
    def __init__(self) -> None:
        self.seen: list[CustomerSubmit] = []

    async def on_submit(self, submit: CustomerSubmit) -> Decision:
        self.seen.append(submit)
        return {"0020": "blocked", "0021": "opted_out"}.get(submit.phones[0][-4:], "accepted")  # type: ignore[return-value]


async def _server(**account: object) -> tuple[CmppServer, _ByNumber]:
    handler = _ByNumber()
    server = CmppServer([dataclasses.replace(ACCOUNT, **account)], handler, port=0)  # type: ignore[arg-type]
    await server.start()
    return server, handler


def _client(server: CmppServer, version: int = p.V30, **options: object) -> CmppGateway:
    return CmppGateway("customer", "127.0.0.1", server.port, ACCOUNT.sp_id, ACCOUNT.secret, version=version,
                       active_test_interval=0, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [p.V30, p.V20])
def test_submit_block_and_report_back_over_the_bind(version: int) -> None:
    async def go() -> None:
        server, handler = await _server()
        gw = _client(server, version)
        events = MemoryEvents()
        await gw.start(events)
        assert gw.negotiated == version
        ok = await gw.submit(OutboundMessage("c1", "13800000001", "【示例】您的验证码是123456"))
        with pytest.raises(PermanentGatewayError) as blocked:
            await gw.submit(OutboundMessage("c2", "13800000020", "【示例】违规内容"))
        assert blocked.value.carrier_code == "cmpp:20"
        with pytest.raises(PermanentGatewayError) as opted:
            await gw.submit(OutboundMessage("c3", "13800000021", "【示例】营销"))
        assert opted.value.carrier_code == "cmpp:21"
        server.report(ACCOUNT.sp_id, int(ok.gateway_ids[0], 16), "13800000001", "DELIVRD")
        await events.wait_for(lambda: bool(events.receipts))
        assert (events.receipts[0].gateway_id, events.receipts[0].status) == (ok.gateway_ids[0], "delivered")
        assert handler.seen[0].account.tenant == "acme"
        await gw.close()
        await server.stop()

    run(go())


def test_bad_secret_and_connection_limit() -> None:
    async def go() -> None:
        server, _ = await _server(max_connections=1)
        bad = CmppGateway("x", "127.0.0.1", server.port, ACCOUNT.sp_id, "wrong", active_test_interval=0)
        with pytest.raises(GatewayUnavailable) as refused:
            await bad.start(MemoryEvents())
        assert refused.value.carrier_code == "cmpp:3"
        first = _client(server)
        await first.start(MemoryEvents())
        second = _client(server, reconnect=False)
        with pytest.raises(GatewayUnavailable) as limited:
            await second.start(MemoryEvents())
        assert limited.value.carrier_code == "cmpp:5"
        await first.close()
        await server.stop()

    run(go())


def test_throughput_over_the_account_rate_is_flow_control() -> None:
    async def go() -> None:
        server, _ = await _server(rate=20.0)
        gw = _client(server, window=8)
        await gw.start(MemoryEvents())
        outcomes = await asyncio.gather(
            *(gw.submit(OutboundMessage(f"r{i}", "13800000001", f"rate {i}")) for i in range(60)),
            return_exceptions=True,
        )
        codes = {o.carrier_code for o in outcomes if isinstance(o, TransientGatewayError)}
        accepted = sum(1 for o in outcomes if not isinstance(o, BaseException))
        # over 20/s the server answers result 8; our client then pauses its channel (then the bucket refills)
        assert codes == {"cmpp:8"} and accepted >= 15 and gw.pauses >= 1
        await gw.close()
        await server.stop()

    run(go())


def test_long_message_is_screened_whole_and_a_refusal_reports_every_part() -> None:
    async def go() -> None:
        server, handler = await _server()
        gw = _client(server)
        events = MemoryEvents()
        await gw.start(events)
        ok = await gw.submit(OutboundMessage("l1", "13800000001", LONG))
        refused = await gw.submit(OutboundMessage("l2", "13800000020", LONG))
        assert [s.text for s in handler.seen] == [LONG, LONG]  # once each, whole
        ids = set(refused.gateway_ids)
        await events.wait_for(lambda: ids <= {r.gateway_id for r in events.receipts})
        assert {r.carrier_code for r in events.receipts} == {"REJECTD"} and len(ok.gateway_ids) == len(ids) >= 3
        await gw.close()
        await server.stop()

    run(go())


def test_reports_and_mo_wait_for_the_customer_to_reconnect() -> None:
    async def go() -> None:
        server, _ = await _server()
        server.report(ACCOUNT.sp_id, 0x1234, "13800000001", "DELIVRD")
        server.mo(ACCOUNT.sp_id, "13800000001", "106900", "TD")
        gw = _client(server)
        events = MemoryEvents()
        await gw.start(events)
        await events.wait_for(lambda: bool(events.receipts) and bool(events.inbound))
        assert events.receipts[0].gateway_id == p.msg_id_text(0x1234) and events.inbound[0].opt_out
        await gw.close()
        await server.stop()

    run(go())


def test_independent_clients_cmppy_and_pycmpp_bind_and_submit() -> None:
    cmppy = pytest.importorskip("cmppy")
    from cmppy.request import SubmitReq
    from pycmpp import request as pyreq
    from pycmpp import response as pyresp

    async def go() -> None:
        server, handler = await _server()

        def with_cmppy() -> tuple[int, int]:
            client = cmppy.Cmppy("127.0.0.1", server.port, ACCOUNT.sp_id, ACCOUNT.secret)
            ok = client.request(SubmitReq(ACCOUNT.sp_id, "hello", src_id="106900", dest_terminal_id=["13800000001"]))
            client = cmppy.Cmppy("127.0.0.1", server.port, ACCOUNT.sp_id, ACCOUNT.secret)
            no = client.request(SubmitReq(ACCOUNT.sp_id, "bad", src_id="106900", dest_terminal_id=["13800000020"]))
            return ok.result, no.result

        def with_pycmpp() -> tuple[int, bytes, int]:
            with socket.create_connection(("127.0.0.1", server.port), 5) as sock:
                connect = pyreq.ConnectRequestInstance()
                sock.sendall(connect.create(ACCOUNT.sp_id, ACCOUNT.secret))
                resp = pyresp.ConnectResponseInstance()
                resp.resolve(sock.recv(64))
                sock.sendall(pyreq.SubmitRequestInstance().create(
                    msg_src=ACCOUNT.sp_id, msg_content="你好", dest_terminal_id=["13800000001"], src_id="106900"))
                submit = pyresp.SubmitResponseInstance()
                submit.resolve(sock.recv(64))
                auth_ok = resp.authenticator_ISMG == p.authenticator_ismg(0, connect.auth_source, ACCOUNT.secret)
                return resp.status, b"ok" if auth_ok else b"bad", submit.status

        assert await asyncio.to_thread(with_cmppy) == (0, 20)  # CMPP 3.0: accepted, then blocked
        assert await asyncio.to_thread(with_pycmpp) == (0, b"ok", 0)  # CMPP 2.x (it says 0x21)
        assert [s.text for s in handler.seen] == ["hello", "bad", "你好"]
        await server.stop()

    run(go())
