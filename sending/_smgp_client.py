"""The SMGP 3.0 SP client adapter (China Telecom): Login in transmit mode (send and receive on one
connection), windowed Submit with long-message UDH (TP_udhi, PkTotal and PkNumber as TLVs), Deliver
status reports and MO, Active_Test both ways, Exit. PDU layouts: ``sending/_smgp_protocol.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from smsguard.sending import _smgp_protocol as p
from smsguard.sending._cmpp_protocol import timestamp  # the same MMDDHHMMSS clock
from smsguard.sending._gateway import GatewayUnavailable, OutboundMessage, PermanentGatewayError
from smsguard.sending._long_sms import encode_text, split_content
from smsguard.sending._pdu_link import PduLink, Streams


def report_status(stat: str) -> str:
    return {"DELIVRD": "delivered", "EXPIRED": "expired"}.get(stat, "failed")


class SmgpGateway(PduLink):
    kind = "smgp"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        client_id: str,
        secret: str,
        *,
        src_id: str = "",
        service_id: str = "",
        need_report: int = 1,
        **link: object,
    ) -> None:
        super().__init__(name, host, port, **link)  # type: ignore[arg-type]
        self.client_id, self.secret = client_id, secret
        self.src_id = src_id or client_id
        self.service_id = service_id
        self.need_report = need_report  # receipts map outcomes back to our ids: on unless told otherwise

    def _encode(self, sequence: Hashable, pdu: p.Pdu) -> bytes:
        return p.encode(sequence, pdu)  # type: ignore[arg-type]

    async def _read(self, reader: asyncio.StreamReader) -> tuple[Hashable, p.Pdu]:
        return await p.read_pdu(reader)

    def _is_response(self, pdu: p.Pdu) -> bool:
        return isinstance(pdu, p.SubmitResp | p.ExitResp | p.ActiveTestResp)

    def _keepalive_pdu(self) -> p.Pdu:
        return p.ActiveTest()

    def _logout_pdu(self) -> p.Pdu:
        return p.Exit()

    async def _login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Streams | None:
        ts = timestamp()
        auth = p.authenticator_client(self.client_id, self.secret, ts)
        writer.write(p.encode(self._next_seq(), p.Login(self.client_id, auth, p.LOGIN_TRANSMIT, int(ts))))  # type: ignore[arg-type]
        resp = await self._read_login_response(reader)
        if not isinstance(resp, p.LoginResp) or resp.status != 0:
            status = getattr(resp, "status", "?")
            raise GatewayUnavailable(f"Login refused, status {status}", where=self.where, carrier_code=f"smgp:{status}")
        if resp.authenticator != p.authenticator_server(0, auth, self.secret):
            raise GatewayUnavailable("SMGW authenticator does not match the shared secret", where=self.where)

    async def _on_request(self, writer: asyncio.StreamWriter, sequence: Hashable, pdu: p.Pdu) -> bool:
        if isinstance(pdu, p.Deliver):
            ack = p.DeliverResp(pdu.msg_id, 0)

            def send_ack() -> None:
                self._send(writer, self._encode(sequence, ack))

            self._spawn(self._hand_over(lambda: self._deliver(pdu), send_ack))
        elif isinstance(pdu, p.ActiveTest):
            self.stats["active_tests_answered"] += 1
            self._send(writer, self._encode(sequence, p.ActiveTestResp()))
        elif isinstance(pdu, p.Exit):
            self._send(writer, self._encode(sequence, p.ExitResp()), now=True)
            return False
        return True

    async def _deliver(self, pdu: p.Deliver) -> None:
        if pdu.is_report:
            report = p.decode_report(pdu.content)
            await self._receipt(p.msg_id_text(report.msg_id), pdu.src_term_id, report_status(report.stat),
                                report.stat)
        else:
            udhi = p.tlv_byte(pdu.tlvs, p.TAG_TP_UDHI)
            await self._mo(pdu.src_term_id, pdu.dest_term_id, pdu.msg_format, udhi, pdu.content)

    def _submit_pdus(self, message: OutboundMessage) -> list[p.Pdu]:
        fmt, content = encode_text(message.text)
        parts = split_content(content, self._next_ref())
        pdus: list[p.Pdu] = []
        for n, (udhi, chunk) in enumerate(parts, start=1):
            tlvs = {p.TAG_TP_UDHI: bytes([udhi])}
            if len(parts) > 1:
                tlvs |= {p.TAG_PK_TOTAL: bytes([len(parts)]), p.TAG_PK_NUMBER: bytes([n])}
            pdus.append(
                p.Submit(
                    dest_term_ids=[message.phone], content=chunk, msg_format=fmt,
                    src_term_id=message.sender or self.src_id, need_report=self.need_report,
                    service_id=self.service_id, tlvs=tlvs,
                )
            )
        return pdus

    def _accepted_id(self, sequence: Hashable, response: p.Pdu) -> str:
        assert isinstance(response, p.SubmitResp)
        if response.status == p.STATUS_BUSY:
            raise self.throttled("smgp:1")
        if response.status != 0:
            raise PermanentGatewayError(
                f"Submit refused, status {response.status}", where=self.where, carrier_code=f"smgp:{response.status}"
            )
        return p.msg_id_text(response.msg_id)
