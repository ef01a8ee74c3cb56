"""The SGIP 1.2 SP adapter (China Unicom), in Unicom's two-connection model.

* We connect to the SMG and Bind (Login Type 1) to send Submits; Submit_Resp comes back on it.
* The SMG connects to US — to the listener this adapter runs on ``listen_host:listen_port`` — and Binds
  (Login Type 2, with the name and password we gave the operator) to send Deliver (MO) and Report
  (receipts); it may open several such connections and close them when idle.

SGIP has no message id: a Report names the Sequence Number of the Submit it is about (node id, time,
counter), so that sequence number, as text, is the gateway id of each part. PDU layouts:
``sending/_sgip_protocol.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable

from smsguard.core import SmsguardError
from smsguard.sending import _sgip_protocol as p
from smsguard.sending._corked import CorkedWriter
from smsguard.sending._gateway import GatewayEvents, GatewayUnavailable, OutboundMessage, PermanentGatewayError
from smsguard.sending._long_sms import encode_text, split_content
from smsguard.sending._pdu_link import PduLink, Streams

log = logging.getLogger(__name__)


def report_status(state: int, error_code: int) -> tuple[str, str]:
    if state == p.STATE_DELIVERED:
        return "delivered", "0"
    return "failed", f"{state}:{error_code}"


class SgipGateway(PduLink):
    kind = "sgip"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        login_name: str,
        login_password: str,
        *,
        node_id: int,
        corp_id: str = "",
        sp_number: str = "",
        service_type: str = "",
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        smg_login: tuple[str, str] | None = None,
        report_flag: int = 1,
        **link: object,
    ) -> None:
        link.setdefault("active_test_interval", 0.0)  # SGIP has no keep-alive PDU
        super().__init__(name, host, port, **link)  # type: ignore[arg-type]
        self.login_name, self.login_password = login_name, login_password
        self.node_id = node_id
        self.corp_id = corp_id
        self.sp_number = sp_number
        self.service_type = service_type
        self.listen_host, self.listen_port = listen_host, listen_port
        self.smg_login = smg_login or (login_name, login_password)
        self.report_flag = report_flag  # 1: a Report for every Submit (receipts are how we map outcomes)
        self._server: asyncio.Server | None = None
        self._inbound: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()  # one per SMG connection, awaited by close()
        self.stats["smg_binds"] = 0

    def _next_seq(self) -> Hashable:
        return p.sequence(self.node_id, next(self._seq))

    def _encode(self, sequence: Hashable, pdu: p.Pdu) -> bytes:
        return p.encode(sequence, pdu)  # type: ignore[arg-type]

    async def _read(self, reader: asyncio.StreamReader) -> tuple[Hashable, p.Pdu]:
        return await p.read_pdu(reader)

    def _is_response(self, pdu: p.Pdu) -> bool:
        return isinstance(pdu, p.Resp)

    def _logout_pdu(self) -> p.Pdu:
        return p.Unbind()

    # -- the SP → SMG connection ----------------------------------------------------------------------

    async def start(self, events: GatewayEvents) -> None:
        self.events = events
        if self._server is None:
            self._server = await asyncio.start_server(self._smg_connected, self.listen_host, self.listen_port)
            self.listen_port = self._server.sockets[0].getsockname()[1]
        await super().start(events)

    async def _login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Streams | None:
        writer.write(p.encode(self._next_seq(), p.Bind(p.LOGIN_SP_TO_SMG, self.login_name, self.login_password)))  # type: ignore[arg-type]
        resp = await self._read_login_response(reader)
        if not isinstance(resp, p.Resp) or resp.command != p.BIND | p.RESP or resp.result != 0:
            result = getattr(resp, "result", "?")
            raise GatewayUnavailable(f"Bind refused, result {result}", where=self.where, carrier_code=f"sgip:{result}")

    async def _on_request(self, writer: asyncio.StreamWriter, sequence: Hashable, pdu: p.Pdu) -> bool:
        if isinstance(pdu, p.Unbind):
            self._send(writer, self._encode(sequence, p.Resp(p.UNBIND | p.RESP)), now=True)
            return False
        if isinstance(pdu, p.Deliver | p.Report):  # some SMGs use the SP's own connection too
            await self._event_then_ack(writer, sequence, pdu)
        return True

    # -- the SMG → SP connections (Deliver, Report) ---------------------------------------------------

    async def _smg_connected(self, reader: asyncio.StreamReader, raw: asyncio.StreamWriter) -> None:
        writer: asyncio.StreamWriter = CorkedWriter(raw)  # type: ignore[assignment]
        self._inbound.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            seq, first = await asyncio.wait_for(p.read_pdu(reader), self.connect_timeout)
            ok = (
                isinstance(first, p.Bind)
                and first.login_type == p.LOGIN_SMG_TO_SP
                and (first.login_name, first.login_password) == self.smg_login
            )
            writer.write(p.encode(seq, p.Resp(p.BIND | p.RESP, p.RESULT_OK if ok else p.RESULT_ILLEGAL_LOGIN)))
            if not ok:
                await writer.drain()
                return
            self.stats["smg_binds"] += 1
            while True:
                seq, pdu = await p.read_pdu(reader)
                if isinstance(pdu, p.Unbind):
                    self._send(writer, p.encode(seq, p.Resp(p.UNBIND | p.RESP)), now=True)
                    await writer.drain()
                    return
                if isinstance(pdu, p.Deliver | p.Report):
                    self._spawn(self._event_then_ack(writer, seq, pdu))
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, SmsguardError):
            pass
        finally:
            self._inbound.discard(writer)
            writer.close()

    async def _event_then_ack(self, writer: asyncio.StreamWriter, seq: Hashable, pdu: p.Deliver | p.Report) -> None:
        command = (p.REPORT if isinstance(pdu, p.Report) else p.DELIVER) | p.RESP

        def ack() -> None:
            self._send(writer, p.encode(seq, p.Resp(command, p.RESULT_OK)))  # type: ignore[arg-type]

        await self._hand_over(lambda: self._event(pdu), ack)

    async def _event(self, pdu: p.Deliver | p.Report) -> None:
        if isinstance(pdu, p.Report):
            if pdu.state == p.STATE_WAITING:
                return  # not an outcome yet: acknowledged, the final Report follows
            status, code = report_status(pdu.state, pdu.error_code)
            await self._receipt(p.sequence_text(pdu.submit_sequence), pdu.user_number, status, code)
        else:
            await self._mo(pdu.user_number, pdu.sp_number, pdu.message_coding, pdu.tp_udhi, pdu.content)

    # -- submit ---------------------------------------------------------------------------------------

    def _submit_pdus(self, message: OutboundMessage) -> list[p.Pdu]:
        fmt, content = encode_text(message.text)
        return [
            p.Submit(
                user_numbers=[message.phone], content=chunk, sp_number=message.sender or self.sp_number,
                corp_id=self.corp_id, service_type=self.service_type, report_flag=self.report_flag,
                tp_udhi=udhi, message_coding=fmt,
            )
            for udhi, chunk in split_content(content, self._next_ref())
        ]

    def _accepted_id(self, sequence: Hashable, response: p.Pdu) -> str:
        assert isinstance(response, p.Resp)
        if response.result in p.RETRYABLE_RESULTS:
            raise self.throttled(f"sgip:{response.result}")
        if response.result != 0:
            raise PermanentGatewayError(
                f"Submit refused, result {response.result}", where=self.where, carrier_code=f"sgip:{response.result}"
            )
        return p.sequence_text(sequence)  # type: ignore[arg-type]

    async def close(self) -> None:
        await super().close()
        if self._server is not None:
            self._server.close()
            for writer in list(self._inbound):
                writer.close()
            if self._handlers:  # they end on the closed connection; let them, rather than be cancelled
                await asyncio.wait(list(self._handlers), timeout=2.0)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
