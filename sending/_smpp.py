"""The SMPP 3.4 adapter on ``smpplib``: bind_transceiver, windowed submit_sm (long messages split with
UDH by ``smpplib.gsm.make_parts``), deliver_sm receipts and MO, enquire_link keep-alive.

smpplib is blocking, so each connection has one reader thread running ``Client.read_once`` (which also
sends enquire_link when the link is idle for ``enquire_link_interval``) and hands results to the asyncio
loop; submits are written from the loop thread. Every write goes through one lock so PDUs from the two
threads never interleave on the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import struct
import threading
from typing import Any, Literal

import smpplib.client
import smpplib.consts as c
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from smsguard.sending._gateway import (
    Gateway,
    GatewayEvents,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
    Receipt,
    ResponseDeadlines,
    SubmitInDoubt,
    SubmitResult,
    TransientGatewayError,
    inbound,
    responses,
)

log = logging.getLogger(__name__)

# submit_sm_resp statuses worth retrying later: throttled, queue full, temporary application errors.
TRANSIENT_STATUSES = frozenset({c.SMPP_ESME_RTHROTTLED, c.SMPP_ESME_RMSGQFUL, c.SMPP_ESME_RX_T_APPN, 0x08})
_RECEIPT = re.compile(rb"id:(?P<id>\S+).*?stat:(?P<stat>\w+)(?:.*?err:(?P<err>\w+))?", re.S)


IdForm = Literal["text", "hex", "dec"]

_HEADER = struct.Struct(">LLLL")
_SUBMIT_SM = 0x00000004


def submit_sm_bytes(sequence: int, *, source_addr: str, dest_addr_ton: int, destination_addr: str, esm_class: int,
                    data_coding: int, short_message: bytes, registered_delivery: int) -> bytes | None:
    """The submit_sm smpplib would generate for these fields (the rest at their defaults: no service_type, source
    TON/NPI unknown, destination NPI ISDN, no schedule or validity, no TLVs), without building its PDU object:
    ``make_pdu`` + ``generate`` was ~9 % of the gateway thread (py-spy, ``bench/pipeline.py``). None when a field
    is outside what smpplib takes (then it builds the PDU and raises its own error)."""
    if len(source_addr) > 20 or len(destination_addr) > 20 or len(short_message) > 254 \
            or not (source_addr + destination_addr).isascii():
        return None
    body = b"".join((
        b"\x00\x00\x00", source_addr.encode(), b"\x00",  # service_type "", source TON, NPI
        bytes((dest_addr_ton, c.SMPP_NPI_ISDN)), destination_addr.encode(), b"\x00",
        bytes((esm_class, 0, 0, 0, 0, registered_delivery, 0, data_coding, 0, len(short_message))),
        short_message,
    ))
    return _HEADER.pack(16 + len(body), _SUBMIT_SM, 0, sequence) + body


def canonical_id(raw: str, form: IdForm) -> str:
    """One spelling of an SMSC message id, so a submit_sm_resp id in hex and a receipt's "id:" in
    decimal (with or without leading zeros) meet: ``hex`` and ``dec`` ids become their decimal value;
    ``text`` ids are compared as sent. An all-zero id is kept (it is not a number we can map)."""
    raw = raw.strip()
    if form == "text" or not raw:
        return raw
    try:
        value = int(raw, 16 if form == "hex" else 10)
    except ValueError:
        return raw
    return str(value) if value else raw


class _SequenceGenerator:
    """smpplib's generator, made safe for the loop thread and the reader thread."""

    MIN_SEQUENCE = 1
    MAX_SEQUENCE = 0x7FFFFFFF

    def __init__(self) -> None:
        self._sequence = 0
        self._lock = threading.Lock()

    @property
    def sequence(self) -> int:
        return self._sequence

    def next_sequence(self) -> int:
        with self._lock:
            self._sequence = self._sequence % self.MAX_SEQUENCE + 1
            return self._sequence


class _Client(smpplib.client.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._send_lock = threading.Lock()
        self.enquire_links = 0
        self._out: list[bytes] = []  # PDUs from the loop thread, written together at the end of its turn

    def send_pdu(self, p: Any) -> bool:
        if p.command == "enquire_link":
            self.enquire_links += 1
        with self._send_lock:
            return super().send_pdu(p)

    def _message_received(self, pdu: Any) -> None:
        # smpplib would call the handler and answer deliver_sm_resp right here, in the reader thread; waiting
        # there for the receipt to be durable stalled every submit_sm_resp behind it (the same thread reads
        # both). The handler hands the event to the loop and answers once it is durable (``answer_deliver``).
        self.message_received_handler(pdu=pdu, client=self)

    def answer_deliver(self, sequence: int, status: int) -> None:
        resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=self, status=status)
        resp.sequence = sequence
        self.send_soon(resp)

    def send_soon(self, p: Any) -> None:
        """From the loop thread: ``p`` joins the bytes written at the end of this loop turn, in one ``sendall``.
        One blocking send per PDU let the other threads take the GIL at every PDU (py-spy: 18 % of the gateway
        thread at ~800 msgs/s). A failed write shuts the socket, so the reader thread ends the connection and
        every submit still waiting is in doubt, as when the peer drops it."""
        if self.state not in c.COMMAND_STATES[p.command]:
            raise smpplib.exceptions.PDUError(f"Command {p.command} failed: {c.DESCRIPTIONS[c.SMPP_ESME_RINVBNDSTS]}")
        self.send_soon_bytes(p.generate())

    def send_soon_bytes(self, data: bytes) -> None:
        """``send_soon`` of a PDU already encoded (the caller checked the session state)."""
        self._out.append(data)
        if len(self._out) == 1:
            asyncio.get_running_loop().call_soon(self._flush_out)

    def _flush_out(self) -> None:
        data, self._out = b"".join(self._out), []
        try:
            with self._send_lock:
                self._socket.sendall(data)
        except (OSError, AttributeError) as e:  # AttributeError: disconnected meanwhile (no socket)
            log.warning("smpp write failed (%s); closing the connection", e)
            with contextlib.suppress(Exception):
                self._socket.shutdown(socket.SHUT_RDWR)


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value or "")


def receipt_status(stat: str, err: str) -> tuple[str, str]:
    """(status, carrier_code) of an SMPP receipt's stat/err."""
    if stat == "DELIVRD":
        return "delivered", stat
    if stat == "EXPIRED":
        return "expired", stat
    if stat in {"ACCEPTD", "ENROUTE"}:
        return "unknown", stat
    return "failed", f"{stat}:{err}" if err else stat


def decode_short_message(pdu: Any) -> str:
    raw: bytes = pdu.short_message or b""
    if (pdu.esm_class or 0) & c.SMPP_GSMFEAT_UDHI and raw:
        raw = raw[raw[0] + 1 :]
    coding = (pdu.data_coding or 0) & 0x0F
    if coding == c.SMPP_ENCODING_ISO10646:
        return raw.decode("utf-16-be", "replace")
    if coding == 0x0F:
        return raw.decode("gbk", "replace")
    return raw.decode("latin-1")


class SmppGateway(Gateway):
    kind = "smpp"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        source_addr: str = "",
        window: int = 32,
        enquire_link_interval: float = 30.0,
        response_timeout: float = 10.0,
        reconnect: bool = True,
        submit_id_form: IdForm = "text",
        receipt_id_form: IdForm = "text",
    ) -> None:
        super().__init__(name, window=window)
        self.host, self.port = host, port
        self.system_id, self.password, self.system_type = system_id, password, system_type
        # How this SMSC spells message ids in submit_sm_resp and in a receipt's text (Kannel's msg-id-type).
        self.submit_id_form, self.receipt_id_form = submit_id_form, receipt_id_form
        self.source_addr = source_addr
        self.enquire_link_interval = enquire_link_interval
        self.response_timeout = response_timeout
        self.reconnect = reconnect
        self._client: _Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, asyncio.Future[tuple[int, str]]] = {}
        self._deadlines = ResponseDeadlines(lambda: SubmitInDoubt("no submit_sm_resp in time", where=self.where))
        self._closing = False
        self._up = False
        self._reconnecting = False
        self._reconnector: asyncio.Future[None] | None = None
        self._handing: set[asyncio.Task[None]] = set()  # deliver_sms being made durable before their ack

    @property
    def connected(self) -> bool:
        return self._up and self._client is not None

    @property
    def enquire_links_sent(self) -> int:
        return self._client.enquire_links if self._client is not None else 0

    # -- connection -----------------------------------------------------------------------------------

    async def start(self, events: GatewayEvents) -> None:
        self.events = events
        self._loop = asyncio.get_running_loop()
        self._closing = False
        await self._connect()

    async def _connect(self) -> None:
        assert self._loop is not None
        client = await self._loop.run_in_executor(None, self._open)
        self._client = client
        self._up = True
        threading.Thread(target=self._read_forever, args=(client,), name=f"smpp-{self.name}", daemon=True).start()

    def _open(self) -> _Client:
        client = _Client(
            self.host,
            self.port,
            timeout=self.enquire_link_interval,
            sequence_generator=_SequenceGenerator(),
            allow_unknown_opt_params=True,
        )
        client.set_message_sent_handler(self._on_sent)
        client.set_message_received_handler(self._on_received)
        client.set_error_pdu_handler(self._on_error_pdu)
        try:
            client.connect()
            client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.bind_transceiver(system_id=self.system_id, password=self.password, system_type=self.system_type)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as e:
            with contextlib.suppress(Exception):
                client.disconnect()
            raise GatewayUnavailable(f"cannot bind: {e}", where=self.where) from None
        return client

    def _read_forever(self, client: _Client) -> None:
        why = "peer closed"
        try:
            while True:
                client.read_once(auto_send_enquire_link=True)
                if client.state == c.SMPP_CLIENT_STATE_OPEN:  # unbound (by us or by the SMSC)
                    why = "unbound"
                    break
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError, ValueError) as e:
            why = repr(e)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._lost, client, why)

    def _lost(self, client: _Client, why: str) -> None:
        if self._client is not client:
            return
        self._up = False
        self._client = None
        with contextlib.suppress(Exception):
            client.disconnect()
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(SubmitInDoubt(f"connection lost ({why}) before submit_sm_resp", where=self.where))
        if self.reconnect and not self._closing and not self._reconnecting:
            self._reconnector = asyncio.ensure_future(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        self._reconnecting = True
        delay = 0.05
        try:
            while not self._closing and not self.connected:
                try:
                    await self._connect()
                    return
                except GatewayUnavailable:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
        finally:
            self._reconnecting = False

    # -- reader-thread callbacks ----------------------------------------------------------------------

    def _on_sent(self, pdu: Any, **_: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._resolve, pdu.sequence, pdu.status, _text(pdu.message_id))

    def _on_error_pdu(self, pdu: Any) -> None:
        # submit_sm_resp with an error status continues to _on_sent; only generic_nack needs handling here.
        if pdu.command == "generic_nack":
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._resolve, pdu.sequence, pdu.status, "")

    def _resolve(self, sequence: int, status: int, message_id: str) -> None:
        fut = self._pending.pop(sequence, None)
        if fut is not None and not fut.done():
            fut.set_result((status, message_id))

    def _on_received(self, pdu: Any, client: _Client | None = None, **_: Any) -> None:
        """deliver_sm (reader thread): hand the event to the loop, which acknowledges it once it is durable. The
        reader goes on reading meanwhile, so receipts never hold up the submit_sm_resps behind them."""
        if pdu.command != "deliver_sm":
            return
        source = _text(pdu.source_addr)
        if (pdu.esm_class or 0) & 0x04:  # SMSC delivery receipt
            match = _RECEIPT.search(pdu.short_message or b"")
            tlv_id = _text(getattr(pdu, "receipted_message_id", None))
            if tlv_id:  # SMPP 3.4 §5.3.2.12: the TLV spells the id as submit_sm_resp did
                gateway_id = canonical_id(tlv_id, self.submit_id_form)
            else:
                gateway_id = canonical_id(match.group("id").decode("latin-1") if match else "", self.receipt_id_form)
            stat = match.group("stat").decode("latin-1") if match else "UNKNOWN"
            err = (match.group("err") or b"").decode("latin-1") if match else ""
            status, carrier = receipt_status(stat, err)
            event = Receipt(self.name, gateway_id, source, status, carrier)  # type: ignore[arg-type]
        else:
            event = inbound(source, decode_short_message(pdu), self.name, _text(pdu.destination_addr))
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._hand_over, client, pdu.sequence, event)

    def _hand_over(self, client: _Client | None, sequence: int, event: Receipt | Any) -> None:
        task = asyncio.ensure_future(self._durable_then_ack(client, sequence, event))
        self._handing.add(task)
        task.add_done_callback(self._handing.discard)

    async def _durable_then_ack(self, client: _Client | None, sequence: int, event: Receipt | Any) -> None:
        status = c.SMPP_ESME_ROK
        try:
            coro = self.events.on_receipt(event) if isinstance(event, Receipt) else self.events.on_inbound(event)
            await asyncio.wait_for(coro, self.response_timeout)
        except Exception:
            log.exception("%s: could not hand over a deliver_sm; answering a temporary error", self.where)
            status = c.SMPP_ESME_RX_T_APPN  # the SMSC keeps it and tries again: nothing is lost
        if client is None or client is not self._client:
            return  # that connection is gone: unacknowledged, the SMSC re-sends it on the next one
        try:
            client.answer_deliver(sequence, status)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as e:
            log.warning("%s: deliver_sm_resp not sent (%s); the SMSC re-sends the deliver_sm", self.where, e)

    # -- submit ---------------------------------------------------------------------------------------

    async def _submit(self, message: OutboundMessage) -> SubmitResult:
        client = self._client
        if client is None or not self._up:
            raise GatewayUnavailable("not bound", where=self.where)
        parts, coding, esm_class = smpplib.gsm.make_parts(message.text, encoding=c.SMPP_ENCODING_ISO10646)
        loop = asyncio.get_running_loop()
        futures = []
        source = message.sender or self.source_addr
        dest_ton = c.SMPP_TON_INTL if message.phone.startswith("+") else c.SMPP_TON_UNK
        destination = message.phone.lstrip("+")
        try:
            if client.state not in c.COMMAND_STATES["submit_sm"]:
                raise smpplib.exceptions.PDUError(
                    f"Command submit_sm failed: {c.DESCRIPTIONS[c.SMPP_ESME_RINVBNDSTS]}")
            for part in parts:
                sequence = client.next_sequence()
                data = submit_sm_bytes(sequence, source_addr=source, dest_addr_ton=dest_ton,
                                       destination_addr=destination, esm_class=esm_class, data_coding=coding,
                                       short_message=part, registered_delivery=c.SMPP_SMSC_DELIVERY_RECEIPT_BOTH)
                if data is None:
                    data = self._submit_pdu(client, sequence, source, dest_ton, destination, part, coding, esm_class)
                fut: asyncio.Future[tuple[int, str]] = loop.create_future()
                self._pending[sequence] = fut
                self._deadlines.add(self._pending, sequence, fut, self.response_timeout)
                futures.append(fut)
                client.send_soon_bytes(data)
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as e:
            for fut in futures:
                fut.cancel()
            if futures:  # a future each for the parts already queued to the socket
                raise SubmitInDoubt(f"connection lost while sending parts: {e}", where=self.where) from None
            raise GatewayUnavailable(f"cannot send: {e}", where=self.where) from None
        resps = await responses(futures)
        ids = []
        for status, message_id in resps:
            if status == c.SMPP_ESME_RTHROTTLED:
                raise self.throttled(f"smpp:0x{status:02x}")
            if status in TRANSIENT_STATUSES:
                raise TransientGatewayError(
                    c.DESCRIPTIONS.get(status, "temporary error"), where=self.where, carrier_code=f"smpp:0x{status:02x}"
                )
            if status != c.SMPP_ESME_ROK:
                raise PermanentGatewayError(
                    c.DESCRIPTIONS.get(status, f"refused, status {status}"),
                    where=self.where,
                    carrier_code=f"smpp:0x{status:02x}",
                )
            ids.append(canonical_id(message_id, self.submit_id_form))
        return SubmitResult(message.id, self.name, tuple(ids))

    @staticmethod
    def _submit_pdu(client: _Client, sequence: int, source: str, dest_ton: int, destination: str, part: bytes,
                    coding: int, esm_class: int) -> bytes:
        """smpplib's own submit_sm (and its errors) for what ``submit_sm_bytes`` does not take."""
        pdu = smpplib.smpp.make_pdu(
            "submit_sm", client=client, sequence=sequence, source_addr_ton=c.SMPP_TON_UNK,
            source_addr_npi=c.SMPP_NPI_UNK, source_addr=source, dest_addr_ton=dest_ton, dest_addr_npi=c.SMPP_NPI_ISDN,
            destination_addr=destination, short_message=part, data_coding=coding, esm_class=esm_class,
            registered_delivery=c.SMPP_SMSC_DELIVERY_RECEIPT_BOTH,
        )
        return pdu.generate()

    async def close(self) -> None:
        self._closing = True
        self._deadlines.close()
        client = self._client
        if client is None:
            return
        with contextlib.suppress(Exception):
            if client._out:  # the submits and acks of this turn go before the unbind
                client._flush_out()
            client.send_pdu(smpplib.smpp.make_pdu("unbind", client=client))
            for _ in range(40):  # the reader thread sees unbind_resp and stops
                if self._client is None:
                    break
                await asyncio.sleep(0.025)
        if self._client is client:
            with contextlib.suppress(Exception):
                client._socket.shutdown(socket.SHUT_RDWR)
            self._lost(client, "closed")
