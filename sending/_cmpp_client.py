"""The CMPP 2.0 / 3.0 SP client adapter: CONNECT with MD5 authentication and version negotiation, windowed
SUBMIT with long-message UDH, DELIVER status reports and MO, ACTIVE_TEST both ways, TERMINATE.

PDU layouts: ``sending/_cmpp_protocol.py`` (CMPP V2.0 and V3.0.0 specifications). ``version`` is the
highest we ask for (``0x30`` by default); an ISMG that answers CONNECT_RESP with a lower Version (or
refuses with status 4, "version too high") is spoken to in 2.0, which is what ``negotiated`` says.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Hashable

from smsguard.sending import _cmpp_protocol as p
from smsguard.sending._gateway import (
    GatewayConfigError,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
)
from smsguard.sending._pdu_link import PduLink, Streams

log = logging.getLogger(__name__)
UNMATCHABLE = "unmatchable:"  # prefix of the id given to a part accepted with an all-zero Msg_Id


def report_status(stat: str) -> tuple[str, str]:
    """(status, carrier_code) of a CMPP report Stat."""
    if stat == "DELIVRD":
        return "delivered", stat
    if stat == "EXPIRED":
        return "expired", stat
    return "failed", stat


class CmppGateway(PduLink):
    kind = "cmpp"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sp_id: str,
        secret: str,
        *,
        src_id: str = "",
        service_id: str = "",
        version: int = p.V30,
        registered_delivery: int = 1,
        **link: object,
    ) -> None:
        super().__init__(name, host, port, **link)  # type: ignore[arg-type]
        if version not in (p.V20, p.V30):
            raise GatewayConfigError("version must be 0x20 (CMPP 2.0) or 0x30 (CMPP 3.0)", where=f"{name}.version")
        self.sp_id, self.secret = sp_id, secret
        self.src_id = src_id or sp_id
        self.service_id = service_id
        self.version = version
        self.negotiated = version
        # Receipts are what map outcomes back to our ids, so they are asked for unless told otherwise.
        self.registered_delivery = registered_delivery

    # -- codec ----------------------------------------------------------------------------------------

    def _encode(self, sequence: Hashable, pdu: p.Pdu) -> bytes:
        return p.encode(sequence, pdu, self.negotiated)  # type: ignore[arg-type]

    async def _read(self, reader: asyncio.StreamReader) -> tuple[Hashable, p.Pdu]:
        return await p.read_pdu(reader, self.negotiated)

    def _is_response(self, pdu: p.Pdu) -> bool:
        return isinstance(pdu, p.SubmitResp | p.TerminateResp | p.ActiveTestResp)

    def _keepalive_pdu(self) -> p.Pdu:
        return p.ActiveTest()

    def _logout_pdu(self) -> p.Pdu:
        return p.Terminate()

    # -- login ----------------------------------------------------------------------------------------

    async def _login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Streams | None:
        reopened = None
        status, resp, auth = await self._connect_as(reader, writer, self.version)
        if status == p.CONNECT_STATUS_VERSION and self.version > p.V20:
            writer.close()
            reader, writer = reopened = await self._open()  # a 2.0-only ISMG: ask again in 2.0, anew
            try:
                status, resp, auth = await self._connect_as(reader, writer, p.V20)
            except BaseException:
                writer.close()
                raise
        if status != 0:
            if reopened:
                writer.close()
            raise GatewayUnavailable(
                f"CONNECT refused, status {status}", where=self.where, carrier_code=f"cmpp:{status}"
            )
        negotiated = p.V30 if min(resp.version, self.negotiated) >= p.V30 else p.V20
        if resp.authenticator != p.authenticator_ismg(0, auth, self.secret, negotiated):
            if reopened:
                writer.close()
            raise GatewayUnavailable("ISMG authenticator does not match the shared secret", where=self.where)
        self.negotiated = negotiated
        return reopened

    async def _connect_as(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, version: int
    ) -> tuple[int, p.ConnectResp, bytes]:
        self.negotiated = version
        ts = p.timestamp()
        auth = p.authenticator_source(self.sp_id, self.secret, ts)
        writer.write(p.encode(self._next_seq(), p.Connect(self.sp_id, auth, int(ts), version)))  # type: ignore[arg-type]
        resp = await self._read_login_response(reader)
        if not isinstance(resp, p.ConnectResp):
            raise GatewayUnavailable(f"expected CONNECT_RESP, got {type(resp).__name__}", where=self.where)
        return resp.status, resp, auth

    # -- events from the ISMG -------------------------------------------------------------------------

    async def _on_request(self, writer: asyncio.StreamWriter, sequence: Hashable, pdu: p.Pdu) -> bool:
        if isinstance(pdu, p.Deliver):
            ack = p.DeliverResp(pdu.msg_id, 0)
            self._spawn(self._hand_over(lambda: self._deliver(pdu), lambda: self._ack(writer, sequence, ack)))
        elif isinstance(pdu, p.ActiveTest):
            self.stats["active_tests_answered"] += 1
            self._send(writer, self._encode(sequence, p.ActiveTestResp()))
        elif isinstance(pdu, p.Terminate):
            self._send(writer, self._encode(sequence, p.TerminateResp()), now=True)
            return False
        return True

    def _ack(self, writer: asyncio.StreamWriter, sequence: Hashable, pdu: p.Pdu) -> None:
        self._send(writer, self._encode(sequence, pdu))

    async def _deliver(self, pdu: p.Deliver) -> None:
        if pdu.registered_delivery == 1:
            report = p.decode_report(pdu.content, self.negotiated)
            status, carrier = report_status(report.stat)
            await self._receipt(p.msg_id_text(report.msg_id), report.dest_terminal_id, status, carrier)
        else:
            await self._mo(pdu.src_terminal_id, pdu.dest_id, pdu.msg_fmt, pdu.tp_udhi, pdu.content)

    # -- submit ---------------------------------------------------------------------------------------

    def _submit_pdus(self, message: OutboundMessage) -> list[p.Pdu]:
        fmt, content = p.encode_text(message.text)
        parts = p.split_content(content, self._next_ref())
        return [
            p.Submit(
                dest_terminal_ids=[message.phone],
                content=chunk,
                msg_fmt=fmt,
                src_id=message.sender or self.src_id,
                msg_src=self.sp_id,
                service_id=self.service_id,
                pk_total=len(parts),
                pk_number=n,
                tp_udhi=udhi,
                registered_delivery=self.registered_delivery,
            )
            for n, (udhi, chunk) in enumerate(parts, start=1)
        ]

    def _accepted_id(self, sequence: Hashable, response: p.Pdu) -> str:
        assert isinstance(response, p.SubmitResp)
        if response.result == p.SUBMIT_RESULT_FLOW_CONTROL:
            raise self.throttled("cmpp:8")
        if response.result != 0:
            raise PermanentGatewayError(
                f"SUBMIT refused, result {response.result}", where=self.where, carrier_code=f"cmpp:{response.result}"
            )
        if response.msg_id == 0:
            # Accepted, but an all-zero Msg_Id matches no report: neither rejected nor retried (it may be
            # delivered); an id of its own keeps it from being joined to another message's receipts.
            log.warning("%s: SUBMIT_RESP accepted with an all-zero Msg_Id; its receipt cannot be matched", self.where)
            return f"{UNMATCHABLE}{uuid.uuid4().hex}"
        return p.msg_id_text(response.msg_id)
