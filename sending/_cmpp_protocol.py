"""CMPP 2.0 (China Mobile Peer to Peer) PDUs: pure encode/decode, no I/O.

Field sizes follow the CMPP 2.0 specification (checked against public implementations): every PDU is a
12-byte header (Total_Length, Command_Id, Sequence_Id, big-endian uint32) and a body; a response's
Command_Id is the request's | 0x80000000. Fixed-size strings are ASCII, NUL-padded.

* CONNECT: Source_Addr 6, AuthenticatorSource 16 (= MD5(Source_Addr + 9 zero bytes + secret + MMDDHHMMSS)),
  Version 1 (0x20), Timestamp 4 (MMDDHHMMSS as an integer).
* CONNECT_RESP (2.0): Status 1, AuthenticatorISMG 16 (= MD5(Status + AuthenticatorSource + secret)), Version 1.
* SUBMIT: Msg_Id 8, Pk_total 1, Pk_number 1, Registered_Delivery 1, Msg_level 1, Service_Id 10,
  Fee_UserType 1, Fee_terminal_Id 21, TP_pId 1, TP_udhi 1, Msg_Fmt 1, Msg_src 6, FeeType 2, FeeCode 6,
  ValId_Time 17, At_Time 17, Src_Id 21, DestUsr_tl 1, Dest_terminal_Id 21×N, Msg_Length 1, Msg_Content, Reserve 8.
* SUBMIT_RESP (2.0): Msg_Id 8, Result 1 (0 ok, 8 flow control = throttled, others refused).
* DELIVER: Msg_Id 8, Dest_Id 21, Service_Id 10, TP_pid 1, TP_udhi 1, Msg_Fmt 1, Src_terminal_Id 21,
  Registered_Delivery 1 (1 = status report), Msg_Length 1, Msg_Content, Reserved 8.
  A status report's Msg_Content: Msg_Id 8, Stat 7, Submit_time 10, Done_time 10, Dest_terminal_Id 21,
  SMSC_sequence 4.
* DELIVER_RESP (2.0): Msg_Id 8, Result 1. ACTIVE_TEST: empty; ACTIVE_TEST_RESP: Reserved 1.
  TERMINATE / TERMINATE_RESP: empty.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import struct

CONNECT = 0x00000001
TERMINATE = 0x00000002
SUBMIT = 0x00000004
DELIVER = 0x00000005
ACTIVE_TEST = 0x00000008
RESP = 0x80000000
VERSION = 0x20

HEADER = struct.Struct(">III")
MAX_PDU = 4096  # a CMPP 2.0 PDU is far smaller; anything bigger is a framing error

FMT_ASCII = 0
FMT_UCS2 = 8
FMT_GBK = 15

SUBMIT_RESULT_OK = 0
SUBMIT_RESULT_FLOW_CONTROL = 8  # 流量控制错: the one result worth retrying

SINGLE_BYTES = 140  # one message: 140 octets of content (70 UCS-2 characters)
PART_BYTES = 134  # one part of a long message: 140 minus the 6-octet UDH (67 UCS-2 characters)


class CmppError(ValueError):
    """A PDU cannot be decoded."""


def _s(value: str, size: int) -> bytes:
    return value.encode("ascii", "replace")[:size].ljust(size, b"\0")


def _u(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


# -- authentication -------------------------------------------------------------------------------------


def timestamp(now: dt.datetime | None = None) -> str:
    """MMDDHHMMSS, the form CONNECT authenticates over."""
    return (now or dt.datetime.now()).strftime("%m%d%H%M%S")


def authenticator_source(source_addr: str, secret: str, ts: str) -> bytes:
    return hashlib.md5(source_addr.encode("ascii") + b"\0" * 9 + secret.encode("utf-8") + ts.encode("ascii")).digest()


def authenticator_ismg(status: int, auth_source: bytes, secret: str) -> bytes:
    return hashlib.md5(bytes([status]) + auth_source + secret.encode("utf-8")).digest()


# -- message ids ----------------------------------------------------------------------------------------


def make_msg_id(gateway_code: int, sequence: int, now: dt.datetime | None = None) -> int:
    """The 64-bit Msg_Id: month 4 bits, day 5, hour 5, minute 6, second 6, ISMG code 22, sequence 16."""
    t = now or dt.datetime.now()
    value = t.month
    for part, bits in ((t.day, 5), (t.hour, 5), (t.minute, 6), (t.second, 6)):
        value = (value << bits) | part
    return (value << 38) | ((gateway_code & 0x3FFFFF) << 16) | (sequence & 0xFFFF)


# -- text -----------------------------------------------------------------------------------------------


def encode_text(text: str) -> tuple[int, bytes]:
    """ASCII when it fits, else UCS-2 (big-endian), the format every Chinese ISMG accepts."""
    if text.isascii():
        return FMT_ASCII, text.encode("ascii")
    return FMT_UCS2, text.encode("utf-16-be")


def decode_text(fmt: int, content: bytes) -> str:
    if fmt == FMT_UCS2:
        return content.decode("utf-16-be", "replace")
    if fmt == FMT_GBK:
        return content.decode("gbk", "replace")
    return content.decode("latin-1")


def split_content(content: bytes, ref: int) -> list[tuple[int, bytes]]:
    """[(tp_udhi, content)] for each part: one part without UDH when it fits, else 6-octet UDH parts."""
    if len(content) <= SINGLE_BYTES:
        return [(0, content)]
    step = PART_BYTES
    chunks = [content[i : i + step] for i in range(0, len(content), step)]
    if len(chunks) > 255:
        raise CmppError("message too long")
    total = len(chunks)
    return [(1, bytes([5, 0, 3, ref & 0xFF, total, n]) + chunk) for n, chunk in enumerate(chunks, start=1)]


def strip_udh(udhi: int, content: bytes) -> tuple[bytes, tuple[int, int, int] | None]:
    """(text bytes, (ref, total, seq) or None) of a part."""
    if not udhi or not content:
        return content, None
    header_len = content[0] + 1
    part = None
    header = content[1:header_len]
    i = 0
    while i + 1 < len(header):
        iei, size = header[i], header[i + 1]
        if iei == 0 and size == 3 and i + 5 <= len(header):
            part = (header[i + 2], header[i + 3], header[i + 4])
        i += 2 + size
    return content[header_len:], part


# -- PDUs -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Connect:
    source_addr: str
    authenticator: bytes
    timestamp: int
    version: int = VERSION


@dataclasses.dataclass(slots=True)
class ConnectResp:
    status: int
    authenticator: bytes
    version: int = VERSION


@dataclasses.dataclass(slots=True)
class Submit:
    dest_terminal_ids: list[str]
    content: bytes
    msg_fmt: int = FMT_UCS2
    src_id: str = ""
    msg_src: str = ""
    service_id: str = ""
    pk_total: int = 1
    pk_number: int = 1
    registered_delivery: int = 1
    tp_udhi: int = 0
    msg_level: int = 0
    fee_user_type: int = 0
    fee_terminal_id: str = ""
    tp_pid: int = 0
    fee_type: str = "01"
    fee_code: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    msg_id: int = 0


@dataclasses.dataclass(slots=True)
class SubmitResp:
    msg_id: int
    result: int


@dataclasses.dataclass(slots=True)
class Deliver:
    msg_id: int
    dest_id: str
    src_terminal_id: str
    content: bytes
    registered_delivery: int = 0
    msg_fmt: int = FMT_UCS2
    service_id: str = ""
    tp_pid: int = 0
    tp_udhi: int = 0


@dataclasses.dataclass(slots=True)
class DeliverResp:
    msg_id: int
    result: int = 0


@dataclasses.dataclass(slots=True)
class StatusReport:
    msg_id: int
    stat: str
    submit_time: str
    done_time: str
    dest_terminal_id: str
    smsc_sequence: int = 0


@dataclasses.dataclass(slots=True)
class ActiveTest:
    pass


@dataclasses.dataclass(slots=True)
class ActiveTestResp:
    reserved: int = 0


@dataclasses.dataclass(slots=True)
class Terminate:
    pass


@dataclasses.dataclass(slots=True)
class TerminateResp:
    pass


Pdu = (
    Connect
    | ConnectResp
    | Submit
    | SubmitResp
    | Deliver
    | DeliverResp
    | ActiveTest
    | ActiveTestResp
    | Terminate
    | TerminateResp
)

_CONNECT = struct.Struct(">6s16sBI")
_CONNECT_RESP = struct.Struct(">B16sB")
_SUBMIT_HEAD = struct.Struct(">QBBBB10sB21sBBB6s2s6s17s17s21sB")
_ID_RESULT = struct.Struct(">QB")
_DELIVER_HEAD = struct.Struct(">Q21s10sBBB21sBB")
_REPORT = struct.Struct(">Q7s10s10s21sI")


def encode_report(report: StatusReport) -> bytes:
    return _REPORT.pack(
        report.msg_id,
        _s(report.stat, 7),
        _s(report.submit_time, 10),
        _s(report.done_time, 10),
        _s(report.dest_terminal_id, 21),
        report.smsc_sequence,
    )


def decode_report(content: bytes) -> StatusReport:
    if len(content) < _REPORT.size:
        raise CmppError(f"status report is {len(content)} octets, expected {_REPORT.size}")
    msg_id, stat, submit, done, dest, seq = _REPORT.unpack_from(content)
    return StatusReport(msg_id, _u(stat), _u(submit), _u(done), _u(dest), seq)


def _body(pdu: Pdu) -> tuple[int, bytes]:
    match pdu:
        case Connect():
            return CONNECT, _CONNECT.pack(_s(pdu.source_addr, 6), pdu.authenticator, pdu.version, pdu.timestamp)
        case ConnectResp():
            return CONNECT | RESP, _CONNECT_RESP.pack(pdu.status, pdu.authenticator, pdu.version)
        case Submit():
            if len(pdu.content) > 255 or not 1 <= len(pdu.dest_terminal_ids) <= 100:
                raise CmppError("submit content over 255 octets or bad destination count")
            head = _SUBMIT_HEAD.pack(
                pdu.msg_id,
                pdu.pk_total,
                pdu.pk_number,
                pdu.registered_delivery,
                pdu.msg_level,
                _s(pdu.service_id, 10),
                pdu.fee_user_type,
                _s(pdu.fee_terminal_id, 21),
                pdu.tp_pid,
                pdu.tp_udhi,
                pdu.msg_fmt,
                _s(pdu.msg_src, 6),
                _s(pdu.fee_type, 2),
                _s(pdu.fee_code, 6),
                _s(pdu.valid_time, 17),
                _s(pdu.at_time, 17),
                _s(pdu.src_id, 21),
                len(pdu.dest_terminal_ids),
            )
            dests = b"".join(_s(d, 21) for d in pdu.dest_terminal_ids)
            return SUBMIT, head + dests + bytes([len(pdu.content)]) + pdu.content + b"\0" * 8
        case SubmitResp():
            return SUBMIT | RESP, _ID_RESULT.pack(pdu.msg_id, pdu.result)
        case Deliver():
            head = _DELIVER_HEAD.pack(
                pdu.msg_id,
                _s(pdu.dest_id, 21),
                _s(pdu.service_id, 10),
                pdu.tp_pid,
                pdu.tp_udhi,
                pdu.msg_fmt,
                _s(pdu.src_terminal_id, 21),
                pdu.registered_delivery,
                len(pdu.content),
            )
            return DELIVER, head + pdu.content + b"\0" * 8
        case DeliverResp():
            return DELIVER | RESP, _ID_RESULT.pack(pdu.msg_id, pdu.result)
        case ActiveTest():
            return ACTIVE_TEST, b""
        case ActiveTestResp():
            return ACTIVE_TEST | RESP, bytes([pdu.reserved])
        case Terminate():
            return TERMINATE, b""
        case TerminateResp():
            return TERMINATE | RESP, b""
    raise CmppError(f"cannot encode {pdu!r}")


def encode(sequence: int, pdu: Pdu) -> bytes:
    command, body = _body(pdu)
    return HEADER.pack(HEADER.size + len(body), command, sequence) + body


def decode(command: int, body: bytes) -> Pdu:
    """Decode one PDU body (the header already split off by the caller)."""
    try:
        return _decode(command, body)
    except (struct.error, IndexError) as e:
        raise CmppError(f"malformed PDU 0x{command:08x}: {e}") from None


def _decode(command: int, body: bytes) -> Pdu:
    if command == CONNECT:
        src, auth, version, ts = _CONNECT.unpack_from(body)
        return Connect(_u(src), auth, ts, version)
    if command == CONNECT | RESP:
        status, auth, version = _CONNECT_RESP.unpack_from(body)
        return ConnectResp(status, auth, version)
    if command == SUBMIT:
        f = _SUBMIT_HEAD.unpack_from(body)
        n = f[17]
        off = _SUBMIT_HEAD.size
        dests = [_u(body[off + 21 * i : off + 21 * (i + 1)]) for i in range(n)]
        off += 21 * n
        length = body[off]
        content = body[off + 1 : off + 1 + length]
        if len(content) != length:
            raise CmppError("submit content shorter than Msg_Length")
        return Submit(
            dest_terminal_ids=dests,
            content=content,
            msg_fmt=f[10],
            src_id=_u(f[16]),
            msg_src=_u(f[11]),
            service_id=_u(f[5]),
            pk_total=f[1],
            pk_number=f[2],
            registered_delivery=f[3],
            tp_udhi=f[9],
            msg_level=f[4],
            fee_user_type=f[6],
            fee_terminal_id=_u(f[7]),
            tp_pid=f[8],
            fee_type=_u(f[12]),
            fee_code=_u(f[13]),
            valid_time=_u(f[14]),
            at_time=_u(f[15]),
            msg_id=f[0],
        )
    if command == SUBMIT | RESP:
        return SubmitResp(*_ID_RESULT.unpack_from(body))
    if command == DELIVER:
        f = _DELIVER_HEAD.unpack_from(body)
        length = f[8]
        content = body[_DELIVER_HEAD.size : _DELIVER_HEAD.size + length]
        if len(content) != length:
            raise CmppError("deliver content shorter than Msg_Length")
        return Deliver(
            msg_id=f[0],
            dest_id=_u(f[1]),
            service_id=_u(f[2]),
            tp_pid=f[3],
            tp_udhi=f[4],
            msg_fmt=f[5],
            src_terminal_id=_u(f[6]),
            registered_delivery=f[7],
            content=content,
        )
    if command == DELIVER | RESP:
        return DeliverResp(*_ID_RESULT.unpack_from(body))
    if command == ACTIVE_TEST:
        return ActiveTest()
    if command == ACTIVE_TEST | RESP:
        return ActiveTestResp(body[0] if body else 0)
    if command == TERMINATE:
        return Terminate()
    if command == TERMINATE | RESP:
        return TerminateResp()
    raise CmppError(f"unknown command 0x{command:08x}")


async def read_pdu(reader: object) -> tuple[int, Pdu]:
    """Read one PDU from an ``asyncio.StreamReader``: (sequence, pdu). EOF raises ``IncompleteReadError``."""
    header = await reader.readexactly(HEADER.size)  # type: ignore[attr-defined]
    length, command, sequence = HEADER.unpack(header)
    if not HEADER.size <= length <= MAX_PDU:
        raise CmppError(f"bad Total_Length {length}")
    body = await reader.readexactly(length - HEADER.size)  # type: ignore[attr-defined]
    return sequence, decode(command, body)
