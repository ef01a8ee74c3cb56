"""An SMPP 3.4 server (the SMSC side) for customers whose software speaks SMPP to us.

Written from "Short Message Peer to Peer Protocol Specification v3.4" (SMPP Developers Forum, 12 October
1999, issue 1.2): §2.2 the bind types, §3.2 the PDU header, §4.1 bind_transmitter / bind_receiver /
bind_transceiver, §4.4 submit_sm, §4.6 deliver_sm, §4.7 data_sm, §4.8 query_sm, §4.9 cancel_sm, §4.11 enquire_link,
§4.2 unbind, §5.1.3 command_status, §5.2.28 message_state,
§5.3.2 the TLVs (sar_*, message_payload, receipted_message_id, message_state) and Appendix B (the delivery
receipt's text). What a submit_sm becomes is the same :class:`SubmitHandler`'s business as for the CMPP
server (screening, opt-outs, caps, budget, channels); the accounts are the same access accounts
(``system_id`` is the account's Source_Addr, ``password`` its secret).

A bind is checked as §4.1 says: an unknown system_id is ESME_RINVSYSID, a wrong password ESME_RINVPASWD,
more binds than the account's connection limit ESME_RBINDFAIL. Per account a window (submit_sm answered
concurrently: reading stops while it is full) and a throughput (more is ESME_RTHROTTLED). A submit_sm, data_sm,
query_sm or cancel_sm on a receiver bind is ESME_RINVBNDSTS; deliver_sm (receipts, MO) go only to receiver and
transceiver binds. A bind idle for ``enquire_link_every`` seconds gets our enquire_link and is dropped if nothing
comes back within ``enquire_link_timeout`` seconds (so a dead ESME does not hold a connection slot).

data_sm is screened and sent as a submit_sm (the text in message_payload; a long one's parts in sar_* TLVs or a
UDH), answered data_sm_resp with the same command_status table. query_sm answers from our records (the account's
own messages only; any part's message_id of a long message): message_state ENROUTE (1) while queued here or
submitted to a carrier, DELIVERED (2), EXPIRED (3), DELETED (4, cancelled), UNDELIVERABLE (5), UNKNOWN (7),
REJECTED (8: a reviewer, screening, an opt-out, a cap, the anti-pumping guard); final_date once final; an id the
account never got is ESME_RQUERYFAIL. cancel_sm takes back a message still queued here (held for review,
scheduled, quiet hours, not yet released): ESME_ROK and no receipt follows; one handed to a carrier, final, or in
the middle of its release is ESME_RCANCELFAIL, an id the account never got ESME_RINVMSGID. The form without a
message_id (every message to destination_addr) is not supported: ESME_RCANCELFAIL.

command_status of submit_sm_resp (0x0000-0x00FF are §5.1.3's; 0x0400-0x04FF is the range §5.1.3 reserves for
the SMSC vendor, ours documented here for customers):

==========  ======================  ==========================================================================
0x00000000  ESME_ROK                accepted (held for review as well: its receipt says DELIVRD once approved
                                    and sent, REJECTD when a reviewer rejects it)
0x00000058  ESME_RTHROTTLED         the account's throughput was exceeded (or this server's 65,536 message_ids
                                    of the second are used up, sending/_access.py): send again later
0x00000014  ESME_RMSGQFUL           the server is stopping: send again later
0x00000008  ESME_RSYSERR            an error on our side: send again later
0x00000400  (smsguard) blocked      refused by content screening (``block``); no receipt follows
0x00000401  (smsguard) opted out    every recipient opted out
0x00000402  (smsguard) capped       reserved, never answered at submit: caps and quiet hours apply at release
                                    (a capped message gets a REJECTD receipt; quiet hours delay it)
0x00000403  (smsguard) no budget    the account's budget or prepaid balance is exhausted
==========  ======================  ==========================================================================

Our message_id is a 64-bit CMPP-style Msg_Id in decimal (up to 20 digits), unique per deployment across
``serve`` processes, hosts and restarts: its layout and the node number taken from SQL at start are in
sending/_access.py's docstring.

A long message (UDH in short_message with esm_class 0x40, or the sar_* TLVs) is screened whole once all its
parts are in: each part is answered ESME_ROK with its own message_id on arrival; if the whole is refused, each
part's receipt says REJECTD (kept in SQL until a receiving bind, when the handler has ``on_refused``). A
message_payload TLV is one whole message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hmac
import itertools
import logging
import struct
from typing import Any

from smsguard.core import SmsguardError
from smsguard.sending._access import AccessServer, Liveness, MsgIdsExhausted
from smsguard.sending._cmpp_server import CmppAccount, CustomerSubmit, SubmitHandler
from smsguard.sending._corked import CorkedWriter

log = logging.getLogger(__name__)

# command_id (§5.1.2)
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
QUERY_SM = 0x00000003
SUBMIT_SM = 0x00000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
CANCEL_SM = 0x00000008
BIND_TRANSCEIVER = 0x00000009
ENQUIRE_LINK = 0x00000015
DATA_SM = 0x00000103
RESP = 0x80000000
BINDS = {BIND_RECEIVER: "receiver", BIND_TRANSMITTER: "transmitter", BIND_TRANSCEIVER: "transceiver"}

# command_status (§5.1.3)
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RINVDSTADR = 0x0B
ESME_RINVMSGID = 0x0C
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RCANCELFAIL = 0x11
ESME_RMSGQFUL = 0x14
ESME_RQUERYFAIL = 0x67
ESME_RTHROTTLED = 0x58
STATUS_BLOCKED = 0x400
STATUS_OPTED_OUT = 0x401
STATUS_CAPPED = 0x402
STATUS_NO_BUDGET = 0x403
STATUSES = {
    "accepted": ESME_ROK,
    "blocked": STATUS_BLOCKED,
    "opted_out": STATUS_OPTED_OUT,
    "capped": STATUS_CAPPED,
    "no_budget": STATUS_NO_BUDGET,
}

# TLV tags (§5.3.2)
TAG_SAR_MSG_REF_NUM = 0x020C
TAG_SAR_TOTAL_SEGMENTS = 0x020E
TAG_SAR_SEGMENT_SEQNUM = 0x020F
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
TAG_SC_INTERFACE_VERSION = 0x0210
MESSAGE_STATES = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}
# query_sm_resp's message_state (§5.2.28) for a recipient's status in our records
ENROUTE, DELIVERED, EXPIRED, DELETED, UNDELIVERABLE, UNKNOWN, REJECTED = 1, 2, 3, 4, 5, 7, 8
QUERY_STATES = {
    "queued": ENROUTE, "deferred": ENROUTE, "submitted": ENROUTE,
    "delivered": DELIVERED, "expired": EXPIRED, "cancelled": DELETED, "failed": UNDELIVERABLE, "unknown": UNKNOWN,
    "rejected": REJECTED, "opted_out": REJECTED, "capped": REJECTED, "refused": REJECTED, "invalid": REJECTED,
}
CANCEL_STATUSES = {"cancelled": ESME_ROK, "not_found": ESME_RINVMSGID, "too_late": ESME_RCANCELFAIL}

ESM_UDHI = 0x40
ESM_RECEIPT = 0x04
MAX_PDU = 64 * 1024


class SmppServerError(SmsguardError):
    code = "smpp_server.error"


class PduError(SmppServerError):
    """A PDU that does not parse: answered generic_nack with ``status``."""

    code = "smpp_server.pdu"

    def __init__(self, message: str, status: int = ESME_RINVCMDLEN) -> None:
        super().__init__(message, where="pdu")
        self.status = status


def encode(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack("!LLLL", 16 + len(body), command_id, status, sequence) + body


def cstring(value: str | bytes, limit: int) -> bytes:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    return raw[: limit - 1] + b"\0"


class _Reader:
    def __init__(self, body: bytes) -> None:
        self.body, self.at = body, 0

    def cstring(self, limit: int) -> str:
        end = self.body.find(b"\0", self.at, self.at + limit)
        if end < 0:
            raise PduError(f"a C-Octet String longer than {limit - 1} octets", ESME_RINVMSGLEN)
        value = self.body[self.at : end].decode("latin-1")
        self.at = end + 1
        return value

    def byte(self) -> int:
        if self.at >= len(self.body):
            raise PduError("the body ends early", ESME_RINVMSGLEN)
        self.at += 1
        return self.body[self.at - 1]

    def octets(self, n: int) -> bytes:
        if self.at + n > len(self.body):
            raise PduError("the body ends early", ESME_RINVMSGLEN)
        self.at += n
        return self.body[self.at - n : self.at]

    def tlvs(self) -> dict[int, bytes]:
        out = {}
        while self.at + 4 <= len(self.body):
            tag, length = struct.unpack_from("!HH", self.body, self.at)
            self.at += 4
            out[tag] = self.octets(length)
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class Bind:
    command_id: int
    system_id: str
    password: str
    system_type: str
    interface_version: int


def parse_bind(command_id: int, body: bytes) -> Bind:
    r = _Reader(body)
    system_id, password, system_type = r.cstring(16), r.cstring(9), r.cstring(13)
    version = r.byte()
    return Bind(command_id, system_id, password, system_type, version)


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitSm:
    source_addr: str
    destination_addr: str
    esm_class: int
    registered_delivery: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes]


def parse_submit(body: bytes) -> SubmitSm:
    r = _Reader(body)
    r.cstring(6)  # service_type
    r.byte(), r.byte()  # source_addr_ton, _npi
    source = r.cstring(21)
    r.byte(), r.byte()  # dest_addr_ton, _npi
    dest = r.cstring(21)
    esm_class = r.byte()
    r.byte(), r.byte()  # protocol_id, priority_flag
    r.cstring(17), r.cstring(17)  # schedule_delivery_time, validity_period
    registered = r.byte()
    r.byte()  # replace_if_present_flag
    coding = r.byte()
    r.byte()  # sm_default_msg_id
    length = r.byte()
    message = r.octets(length)
    return SubmitSm(source, dest, esm_class, registered, coding, message, r.tlvs())


def parse_data_sm(body: bytes) -> SubmitSm:
    """§4.7.1: submit_sm's addressing without the scheduling fields; the text is in message_payload (or, for a
    long message, in the sar_* TLVs' parts)."""
    r = _Reader(body)
    r.cstring(6)  # service_type
    r.byte(), r.byte()
    source = r.cstring(65)
    r.byte(), r.byte()
    dest = r.cstring(65)
    esm_class, registered, coding = r.byte(), r.byte(), r.byte()
    tlvs = r.tlvs()
    if esm_class & ESM_UDHI or TAG_SAR_MSG_REF_NUM in tlvs:  # a part of a long message: read like submit_sm's
        return SubmitSm(source, dest, esm_class, registered, coding, tlvs.pop(TAG_MESSAGE_PAYLOAD, b""), tlvs)
    return SubmitSm(source, dest, esm_class, registered, coding, b"", tlvs)


def parse_message_id(body: bytes, *, skip_service_type: bool) -> str:
    """query_sm's (§4.8.1) or cancel_sm's (§4.9.1, after service_type) message_id."""
    r = _Reader(body)
    if skip_service_type:
        r.cstring(6)
    return r.cstring(65)


def smpp_time(t: dt.datetime) -> str:
    """§7.1.1's absolute time, YYMMDDhhmmss + tenths + quarter hours from UTC + direction, in UTC."""
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
    return f"{t:%y%m%d%H%M%S}000+"


def decode_sm(coding: int, raw: bytes) -> str:
    coding &= 0x0F if coding < 0xF0 else 0xFF
    if coding == 0x08:
        return raw.decode("utf-16-be", "replace")
    if coding == 0x0F:
        return raw.decode("gbk", "replace")
    return raw.decode("latin-1")


def encode_deliver(
    source: str, dest: str, esm_class: int, data_coding: int, message: bytes, tlvs: dict[int, bytes] | None = None
) -> bytes:
    body = (
        cstring("", 6)
        + bytes([1, 1])
        + cstring(source, 21)
        + bytes([1, 1])
        + cstring(dest, 21)
        + bytes([esm_class, 0, 0])
        + cstring("", 17)
        + cstring("", 17)
        + bytes([0, 0, data_coding, 0])
    )
    if len(message) <= 254:
        body += bytes([len(message)]) + message
        extra = dict(tlvs or {})
    else:
        body += b"\0"
        extra = {**(tlvs or {}), TAG_MESSAGE_PAYLOAD: message}
    for tag, value in extra.items():
        body += struct.pack("!HH", tag, len(value)) + value
    return body


def receipt_text(message_id: str, stat: str, submitted: dt.datetime, done: dt.datetime) -> bytes:
    """Appendix B's format: id, sub, dlvrd, submit date, done date, stat, err, text."""
    dlvrd = "001" if stat == "DELIVRD" else "000"
    err = "000" if stat == "DELIVRD" else "001"
    return (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{submitted:%y%m%d%H%M} done date:{done:%y%m%d%H%M} "
        f"stat:{stat} err:{err} text:"
    ).encode("latin-1")


@dataclasses.dataclass(slots=True)
class _Session:
    account: CmppAccount
    writer: Any  # CorkedWriter
    bind: str  # transmitter / receiver / transceiver
    slots: asyncio.Semaphore
    seq: itertools.count = dataclasses.field(default_factory=lambda: itertools.count(1))
    live: Liveness = dataclasses.field(default_factory=Liveness)

    @property
    def receives(self) -> bool:
        return self.bind != "transmitter"

    def send(self, command_id: int, status: int, sequence: int | None, body: bytes = b"") -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(command_id, status, next(self.seq) if sequence is None else sequence, body))


class SmppServer(AccessServer):
    name = "SMPP"

    def __init__(
        self,
        accounts: list[CmppAccount],
        handler: SubmitHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 2775,
        system_id: str = "smsguard",
        gateway_code: int = 0x346,
        enquire_link_every: float = 30.0,
        enquire_link_timeout: float = 10.0,
    ) -> None:
        """``enquire_link_every``: seconds a bind may be idle before we send enquire_link (§4.11; 0: never); one
        that does not answer within ``enquire_link_timeout`` seconds is dropped."""
        super().__init__(accounts, handler, host=host, port=port, gateway_code=gateway_code,
                         keepalive=(enquire_link_every, enquire_link_timeout))
        self.system_id = system_id
        self.sessions: dict[str, list[_Session]] = {}
        # receipts / MO kept until the account has a receiving bind again: (source, dest, esm, coding, sm, tlvs)
        self.waiting: dict[str, list[tuple[str, str, int, int, bytes, dict[int, bytes]]]] = {}
        self._stopping = False

    async def stop(self) -> None:
        self._stopping = True  # submits still arriving are answered ESME_RMSGQFUL
        await super().stop()

    def _probe(self, session: _Session) -> None:
        session.send(ENQUIRE_LINK, 0, None)

    def _goodbye(self, session: _Session) -> None:
        session.send(UNBIND, 0, None)

    def bound(self, account: str) -> bool:
        """Whether the account has a bind that receives (receipts and MO can go out now)."""
        return any(s.receives and not s.writer.is_closing() for s in self.sessions.get(account, []))

    # -- what the platform sends back to the customer -------------------------------------------------

    def report(
        self, account: str, msg_id: int, phone: str, stat: str, src_id: str = "", submitted: dt.datetime | None = None,
        *, keep: bool = True,
    ) -> bool:
        """A delivery receipt (deliver_sm, esm_class 0x04) for one message_id: True if written to a receiving bind;
        else kept in memory until one, or with ``keep=False`` (the caller keeps it in SQL) dropped."""
        now = dt.datetime.now()
        message_id = str(msg_id)
        text = receipt_text(message_id, stat, submitted or now, now)
        tlvs = {
            TAG_RECEIPTED_MESSAGE_ID: cstring(message_id, 65),
            TAG_MESSAGE_STATE: bytes([MESSAGE_STATES.get(stat, 7)]),
        }
        return self._deliver(account, (phone, src_id, ESM_RECEIPT, 0, text, tlvs), keep=keep)

    def mo(self, account: str, phone: str, dest_id: str, text: str, *, keep: bool = True) -> bool:
        """A handset's message to the customer (deliver_sm); a long one goes in one message_payload TLV."""
        coding, raw = (0, text.encode("ascii")) if text.isascii() else (8, text.encode("utf-16-be"))
        return self._deliver(account, (phone, dest_id, 0, coding, raw, {}), keep=keep)

    def _deliver(
        self, account: str, item: tuple[str, str, int, int, bytes, dict[int, bytes]], *, keep: bool = True
    ) -> bool:
        sessions = [s for s in self.sessions.get(account, []) if s.receives and not s.writer.is_closing()]
        if not sessions:
            if keep:
                self.waiting.setdefault(account, []).append(item)
            return False
        session = sessions[0]
        source, dest, esm, coding, raw, tlvs = item
        session.send(DELIVER_SM, 0, None, encode_deliver(source, dest, esm, coding, raw, tlvs))
        return True

    # -- connections ----------------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
        head = await reader.readexactly(16)
        length, command_id, status, sequence = struct.unpack("!LLLL", head)
        if not 16 <= length <= MAX_PDU:
            raise PduError(f"command_length {length}")
        return command_id, status, sequence, await reader.readexactly(length - 16)

    async def _handle(self, reader: asyncio.StreamReader, raw: asyncio.StreamWriter) -> None:
        writer: Any = CorkedWriter(raw)
        session: _Session | None = None
        try:
            while session is None:  # before a bind only enquire_link and a bind are answered
                command_id, _, sequence, body = await asyncio.wait_for(self._read(reader), 30)
                if command_id in BINDS:
                    session = self._bind(command_id, sequence, body, writer)
                    await writer.drain()
                    if session is None:
                        return
                elif command_id == ENQUIRE_LINK:
                    writer.write(encode(ENQUIRE_LINK | RESP, 0, sequence))
                elif command_id == UNBIND:
                    writer.write_now(encode(UNBIND | RESP, 0, sequence))
                    return
                else:
                    writer.write(encode(GENERIC_NACK, ESME_RINVBNDSTS, sequence))
            if session.receives:
                for item in self.waiting.pop(session.account.sp_id, []):
                    self._deliver(session.account.sp_id, item)
            self._watch(session)
            while True:
                command_id, _, sequence, body = await self._read(reader)
                session.live.touch()
                if command_id in (SUBMIT_SM, DATA_SM, QUERY_SM, CANCEL_SM):
                    if session.bind == "receiver":  # §2.2: a receiver bind only receives
                        session.send(command_id | RESP, ESME_RINVBNDSTS, sequence)
                        continue
                    await session.slots.acquire()  # the window: stop reading while it is full
                    if command_id in (SUBMIT_SM, DATA_SM):
                        self._spawn(self._submit(session, sequence, body, command_id))
                    else:
                        self._spawn(self._query_or_cancel(session, sequence, body, command_id))
                elif command_id == ENQUIRE_LINK:
                    session.send(ENQUIRE_LINK | RESP, 0, sequence)
                elif command_id == UNBIND:
                    writer.write_now(encode(UNBIND | RESP, 0, sequence))
                    return
                elif command_id in BINDS:
                    session.send(command_id | RESP, ESME_RALYBND, sequence)
                elif command_id & RESP:  # deliver_sm_resp, enquire_link_resp, unbind_resp, generic_nack
                    if command_id == UNBIND | RESP:
                        return
                else:
                    session.send(GENERIC_NACK, ESME_RINVCMDID, sequence)
        except PduError as e:
            with contextlib.suppress(Exception):
                writer.write_now(encode(GENERIC_NACK, e.status, 0))
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, SmsguardError):
            pass
        finally:
            if session is not None:
                self._closed(session)
            writer.close()

    def _bind(self, command_id: int, sequence: int, body: bytes, writer: Any) -> _Session | None:
        resp = command_id | RESP
        try:
            bind = parse_bind(command_id, body)
        except PduError as e:
            writer.write(encode(resp, e.status, sequence))
            return None
        account = self.accounts.get(bind.system_id)
        status = ESME_ROK
        if account is None:
            status = ESME_RINVSYSID
        elif not hmac.compare_digest(bind.password.encode(), account.secret.encode()):
            status = ESME_RINVPASWD
        elif self._at_limit(account):
            status = ESME_RBINDFAIL
        if status != ESME_ROK or account is None:
            log.info("SMPP bind as %r refused: status 0x%02x", bind.system_id, status)
            writer.write(encode(resp, status, sequence))
            return None
        writer.write(
            encode(
                resp, 0, sequence, cstring(self.system_id, 16) + struct.pack("!HHB", TAG_SC_INTERFACE_VERSION, 1, 0x34)
            )
        )
        session = _Session(account, writer, BINDS[command_id], asyncio.Semaphore(account.window))
        self._opened(session)
        return session

    async def _submit(self, session: _Session, sequence: int, body: bytes, command_id: int = SUBMIT_SM) -> None:
        """A submit_sm, or a data_sm (§4.7: the same message without scheduling), screened and sent alike."""
        resp = command_id | RESP
        try:
            if self._stopping:
                session.send(resp, ESME_RMSGQFUL, sequence)
                return
            try:
                pdu = parse_submit(body) if command_id == SUBMIT_SM else parse_data_sm(body)
            except PduError as e:
                session.send(resp, e.status, sequence)
                return
            if not pdu.destination_addr:
                session.send(resp, ESME_RINVDSTADR, sequence)
                return
            if self._throttled(session.account.sp_id):
                session.send(resp, ESME_RTHROTTLED, sequence)
                return
            msg_id = self._msg_id()
            raw, part = _payload(pdu)
            if part is not None and part[1] > 1:
                session.send(resp, ESME_ROK, sequence, cstring(str(msg_id), 65))
                whole = self._join(session, pdu, part, msg_id, raw)
                if whole is not None:
                    decision = await self.handler.on_submit(whole)
                    if decision != "accepted":
                        await self._refused(whole, lambda part_id: self.report(
                            session.account.sp_id, part_id, whole.phones[0], "REJECTD", whole.src_id))
                return
            submit = CustomerSubmit(
                session.account,
                (msg_id,),
                (pdu.destination_addr,),
                decode_sm(pdu.data_coding, raw),
                pdu.source_addr,
                _wants_receipt(pdu),
                protocol="smpp",
            )
            decision = await self.handler.on_submit(submit)
            status = STATUSES[decision]
            session.send(resp, status, sequence, cstring(str(msg_id), 65) if status == 0 else b"")
        except MsgIdsExhausted:
            session.send(resp, ESME_RTHROTTLED, sequence)
        except Exception:
            log.exception("SMPP submit from %s failed", session.account.sp_id)
            session.send(resp, ESME_RSYSERR, sequence)
        finally:
            session.slots.release()

    async def _query_or_cancel(self, session: _Session, sequence: int, body: bytes, command_id: int) -> None:
        """query_sm (§4.8): the message's state from our records; cancel_sm (§4.9): a message still queued
        here (not handed to a carrier yet) is cancelled, no receipt follows."""
        resp = command_id | RESP
        try:
            try:
                message_id = parse_message_id(body, skip_service_type=command_id == CANCEL_SM)
            except PduError as e:
                session.send(resp, e.status, sequence)
                return
            if command_id == CANCEL_SM and not message_id:  # §4.9.1's "every message to destination_addr"
                session.send(resp, ESME_RCANCELFAIL, sequence)
                return
            if not message_id.isdigit() or int(message_id) >= 1 << 64:  # ours are decimal Msg_Ids
                session.send(resp, ESME_RINVMSGID if command_id == CANCEL_SM else ESME_RQUERYFAIL, sequence)
                return
            if command_id == QUERY_SM:
                query = getattr(self.handler, "on_query", None)
                found = None if query is None else await query(session.account, int(message_id))
                if found is None:
                    session.send(resp, ESME_RQUERYFAIL, sequence)
                    return
                status, final_at = found
                state = QUERY_STATES.get(status, UNKNOWN)
                final = smpp_time(final_at) if final_at is not None and state != ENROUTE else ""
                session.send(resp, ESME_ROK, sequence, cstring(message_id, 65) + cstring(final, 17) + bytes([state, 0]))
                return
            cancel = getattr(self.handler, "on_cancel", None)
            outcome = "too_late" if cancel is None else await cancel(session.account, int(message_id))
            session.send(resp, CANCEL_STATUSES[outcome], sequence)
        except Exception:
            log.exception("SMPP query_sm / cancel_sm from %s failed", session.account.sp_id)
            session.send(resp, ESME_RSYSERR, sequence)
        finally:
            session.slots.release()

    def _join(
        self, session: _Session, pdu: SubmitSm, part: tuple[int, int, int], msg_id: int, raw: bytes
    ) -> CustomerSubmit | None:
        ref, total, number = part
        ordered = self._collect((session.account.sp_id, pdu.destination_addr, ref, total), number, total, msg_id, raw)
        if ordered is None:
            return None
        text = decode_sm(pdu.data_coding, b"".join(chunk for _, chunk in ordered))
        return CustomerSubmit(
            session.account,
            tuple(i for i, _ in ordered),
            (pdu.destination_addr,),
            text,
            pdu.source_addr,
            _wants_receipt(pdu),
            protocol="smpp",
        )


def _wants_receipt(pdu: SubmitSm) -> int:
    return 1 if pdu.registered_delivery & 0x03 else 0  # §5.2.17: receipt on success and/or failure


def _payload(pdu: SubmitSm) -> tuple[bytes, tuple[int, int, int] | None]:
    """(the text's octets, (ref, total, number) of a long message's part, or None)."""
    if TAG_MESSAGE_PAYLOAD in pdu.tlvs:
        return pdu.tlvs[TAG_MESSAGE_PAYLOAD], None
    raw = pdu.short_message
    if pdu.esm_class & ESM_UDHI and raw:
        udh, raw = raw[1 : 1 + raw[0]], raw[1 + raw[0] :]
        i = 0
        while i + 2 <= len(udh):
            iei, length = udh[i], udh[i + 1]
            value = udh[i + 2 : i + 2 + length]
            if iei == 0x00 and length == 3:
                return raw, (value[0], value[1], value[2])
            if iei == 0x08 and length == 4:
                return raw, ((value[0] << 8) | value[1], value[2], value[3])
            i += 2 + length
        return raw, None
    sar = pdu.tlvs
    if TAG_SAR_MSG_REF_NUM in sar and TAG_SAR_TOTAL_SEGMENTS in sar and TAG_SAR_SEGMENT_SEQNUM in sar:
        ref = int.from_bytes(sar[TAG_SAR_MSG_REF_NUM], "big")
        return raw, (ref, sar[TAG_SAR_TOTAL_SEGMENTS][0], sar[TAG_SAR_SEGMENT_SEQNUM][0])
    return raw, None
