"""CMPP 2.0 and 3.0 (China Mobile Peer to Peer) PDUs: pure encode/decode, no I/O.

Written from 《中国移动通信互联网短信网关接口协议 (China Mobile Peer to Peer, CMPP)》 V2.0 (2002) and
V3.0.0 (2003), checking field layouts against the public field tables of Lihuanghe/SMSGate. Every PDU is
a 12-byte header (Total_Length, Command_Id, Sequence_Id, big-endian uint32) and a body; a response's
Command_Id is the request's | 0x80000000. Fixed-size strings are ASCII, NUL-padded.

* CONNECT (both): Source_Addr 6, AuthenticatorSource 16 (= MD5(Source_Addr + 9 zero bytes + secret +
  MMDDHHMMSS)), Version 1 (0x20 / 0x30), Timestamp 4 (MMDDHHMMSS as an integer).
* CONNECT_RESP: Status 1 (2.0) / 4 (3.0), AuthenticatorISMG 16 (= MD5(Status + AuthenticatorSource +
  secret), Status in its own width), Version 1 (the highest the ISMG speaks). The width of Status
  tells the two apart (18 or 21 octets), which is how the client negotiates.
* SUBMIT: Msg_Id 8, Pk_total 1, Pk_number 1, Registered_Delivery 1, Msg_level 1, Service_Id 10,
  Fee_UserType 1, Fee_terminal_Id 21 (3.0: 32 + Fee_terminal_type 1), TP_pId 1, TP_udhi 1, Msg_Fmt 1,
  Msg_src 6, FeeType 2, FeeCode 6, ValId_Time 17, At_Time 17, Src_Id 21, DestUsr_tl 1,
  Dest_terminal_Id 21×N (3.0: 32×N + Dest_terminal_type 1), Msg_Length 1, Msg_Content,
  Reserve 8 (3.0: LinkID 20).
* SUBMIT_RESP: Msg_Id 8, Result 1 (3.0: 4); 0 ok, 8 flow control (throttled), others refused.
* DELIVER: Msg_Id 8, Dest_Id 21, Service_Id 10, TP_pid 1, TP_udhi 1, Msg_Fmt 1, Src_terminal_Id 21
  (3.0: 32 + Src_terminal_type 1), Registered_Delivery 1 (1 = status report), Msg_Length 1,
  Msg_Content, Reserved 8 (3.0: LinkID 20). A status report's Msg_Content: Msg_Id 8, Stat 7,
  Submit_time 10, Done_time 10, Dest_terminal_Id 21 (3.0: 32), SMSC_sequence 4.
* DELIVER_RESP: Msg_Id 8, Result 1 (3.0: 4). ACTIVE_TEST: empty; ACTIVE_TEST_RESP: Reserved 1.
  TERMINATE / TERMINATE_RESP: empty. CANCEL: Msg_Id 8; CANCEL_RESP: Success_Id 1 (3.0: 4), 0 done, 1 failed.
* QUERY (both): Time 8 (YYYYMMDD), Query_Type 1 (0 totals, 1 one Service_Id), Query_Code 10, Reserve 8.
  QUERY_RESP: Time 8, Query_Type 1, Query_Code 10, then eight counts of 4: MT_TLMsg, MT_Tlusr, MT_Scs,
  MT_WT, MT_FL, MO_Scs, MO_WT, MO_FL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import struct

from smsguard.core import ProtocolError
from smsguard.sending._fixed_fields import pad as _s
from smsguard.sending._fixed_fields import unpad as _u
from smsguard.sending._long_sms import FMT_ASCII, FMT_GBK, FMT_UCS2, decode_text, encode_text, split_content, strip_udh

__all__ = ["FMT_ASCII", "FMT_GBK", "FMT_UCS2", "decode_text", "encode_text", "split_content", "strip_udh"]

CONNECT = 0x00000001
TERMINATE = 0x00000002
SUBMIT = 0x00000004
DELIVER = 0x00000005
QUERY = 0x00000006
CANCEL = 0x00000007
ACTIVE_TEST = 0x00000008
RESP = 0x80000000
V20 = 0x20
V30 = 0x30
VERSION = V20  # kept for callers that speak 2.0 only

HEADER = struct.Struct(">III")
MAX_PDU = 4096  # a CMPP PDU is far smaller; anything bigger is a framing error

SUBMIT_RESULT_OK = 0
SUBMIT_RESULT_FLOW_CONTROL = 8  # 流量控制错: the one result worth retrying
CONNECT_STATUS_VERSION = 4  # 版本太高: the ISMG does not speak the version we asked for


class CmppError(ProtocolError):
    """A PDU cannot be encoded or decoded (a framing or field error on the wire)."""

    code = "gateway.cmpp.malformed"


# -- authentication -------------------------------------------------------------------------------------


def timestamp(now: dt.datetime | None = None) -> str:
    """MMDDHHMMSS, the form CONNECT authenticates over."""
    return (now or dt.datetime.now()).strftime("%m%d%H%M%S")


def authenticator_source(source_addr: str, secret: str, ts: str) -> bytes:
    return hashlib.md5(source_addr.encode("ascii") + b"\0" * 9 + secret.encode("utf-8") + ts.encode("ascii")).digest()


def authenticator_ismg(status: int, auth_source: bytes, secret: str, version: int = V20) -> bytes:
    status_bytes = status.to_bytes(4 if version >= V30 else 1, "big")
    return hashlib.md5(status_bytes + auth_source + secret.encode("utf-8")).digest()


# -- message ids ----------------------------------------------------------------------------------------


def make_msg_id(gateway_code: int, sequence: int, now: dt.datetime | None = None) -> int:
    """The 64-bit Msg_Id: month 4 bits, day 5, hour 5, minute 6, second 6, ISMG code 22, sequence 16."""
    t = now or dt.datetime.now()
    value = t.month
    for part, bits in ((t.day, 5), (t.hour, 5), (t.minute, 6), (t.second, 6)):
        value = (value << bits) | part
    return (value << 38) | ((gateway_code & 0x3FFFFF) << 16) | (sequence & 0xFFFF)


def msg_id_text(msg_id: int) -> str:
    """Our text form of a Msg_Id: 16 hex digits, so ids compare equal however a peer prints them."""
    return f"{msg_id:016x}"


# -- PDUs -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Connect:
    source_addr: str
    authenticator: bytes
    timestamp: int
    version: int = V20


@dataclasses.dataclass(slots=True)
class ConnectResp:
    status: int
    authenticator: bytes
    version: int = V20


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
    fee_terminal_type: int = 0  # 3.0
    dest_terminal_type: int = 0  # 3.0
    link_id: str = ""  # 3.0


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
    src_terminal_type: int = 0  # 3.0
    link_id: str = ""  # 3.0


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


@dataclasses.dataclass(frozen=True, slots=True)
class Cancel:
    msg_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class CancelResp:
    success_id: int  # 0 cancelled, 1 not


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    time: str  # YYYYMMDD
    query_type: int = 0
    query_code: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class QueryResp:
    time: str
    query_type: int
    query_code: str
    counts: tuple[int, int, int, int, int, int, int, int]  # MT_TLMsg MT_Tlusr MT_Scs MT_WT MT_FL MO_Scs MO_WT MO_FL


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
    | Cancel
    | CancelResp
    | Query
    | QueryResp
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    """The field widths that differ between 2.0 and 3.0."""

    terminal: int  # Fee_terminal_Id, Dest_terminal_Id, Src_terminal_Id, report Dest_terminal_Id
    typed: bool  # the *_terminal_type octets exist
    tail: int  # Reserve 8 / LinkID 20
    result: str  # struct code of Status / Result


_LAYOUTS = {V20: _Layout(21, False, 8, "B"), V30: _Layout(32, True, 20, "I")}


def layout(version: int) -> _Layout:
    return _LAYOUTS[V30 if version >= V30 else V20]


_CONNECT = struct.Struct(">6s16sBI")
_QUERY_HEAD = struct.Struct(">8sB10s")
_QUERY = struct.Struct(">8sB10s8s")


def encode_report(report: StatusReport, version: int = V20) -> bytes:
    t = layout(version).terminal
    return struct.pack(
        f">Q7s10s10s{t}sI",
        report.msg_id,
        _s(report.stat, 7),
        _s(report.submit_time, 10),
        _s(report.done_time, 10),
        _s(report.dest_terminal_id, t),
        report.smsc_sequence,
    )


def decode_report(content: bytes, version: int = V20) -> StatusReport:
    fmt = struct.Struct(f">Q7s10s10s{layout(version).terminal}sI")
    if len(content) < fmt.size:
        raise CmppError(f"status report is {len(content)} octets, expected {fmt.size}")
    msg_id, stat, submit, done, dest, seq = fmt.unpack_from(content)
    return StatusReport(msg_id, _u(stat), _u(submit), _u(done), _u(dest), seq)


def _body(pdu: Pdu, version: int) -> tuple[int, bytes]:
    lay = layout(version)
    t = lay.terminal
    match pdu:
        case Connect():
            return CONNECT, _CONNECT.pack(_s(pdu.source_addr, 6), pdu.authenticator, pdu.version, pdu.timestamp)
        case ConnectResp():
            return CONNECT | RESP, struct.pack(f">{lay.result}16sB", pdu.status, pdu.authenticator, pdu.version)
        case Submit():
            if len(pdu.content) > 255 or not 1 <= len(pdu.dest_terminal_ids) <= 100:
                raise CmppError("submit content over 255 octets or bad destination count")
            fee = _s(pdu.fee_terminal_id, t) + (bytes([pdu.fee_terminal_type]) if lay.typed else b"")
            head = (
                struct.pack(">QBBBB10sB", pdu.msg_id, pdu.pk_total, pdu.pk_number, pdu.registered_delivery,
                            pdu.msg_level, _s(pdu.service_id, 10), pdu.fee_user_type)
                + fee
                + struct.pack(">BBB6s2s6s17s17s21sB", pdu.tp_pid, pdu.tp_udhi, pdu.msg_fmt, _s(pdu.msg_src, 6),
                              _s(pdu.fee_type, 2), _s(pdu.fee_code, 6), _s(pdu.valid_time, 17),
                              _s(pdu.at_time, 17), _s(pdu.src_id, 21), len(pdu.dest_terminal_ids))
            )
            dests = b"".join(_s(d, t) for d in pdu.dest_terminal_ids)
            if lay.typed:
                dests += bytes([pdu.dest_terminal_type])
            tail = _s(pdu.link_id, 20) if lay.typed else b"\0" * 8
            return SUBMIT, head + dests + bytes([len(pdu.content)]) + pdu.content + tail
        case SubmitResp():
            return SUBMIT | RESP, struct.pack(f">Q{lay.result}", pdu.msg_id, pdu.result)
        case Deliver():
            src = _s(pdu.src_terminal_id, t) + (bytes([pdu.src_terminal_type]) if lay.typed else b"")
            head = (
                struct.pack(">Q21s10sBBB", pdu.msg_id, _s(pdu.dest_id, 21), _s(pdu.service_id, 10), pdu.tp_pid,
                            pdu.tp_udhi, pdu.msg_fmt)
                + src
                + bytes([pdu.registered_delivery, len(pdu.content)])
            )
            tail = _s(pdu.link_id, 20) if lay.typed else b"\0" * 8
            return DELIVER, head + pdu.content + tail
        case DeliverResp():
            return DELIVER | RESP, struct.pack(f">Q{lay.result}", pdu.msg_id, pdu.result)
        case ActiveTest():
            return ACTIVE_TEST, b""
        case ActiveTestResp():
            return ACTIVE_TEST | RESP, bytes([pdu.reserved])
        case Terminate():
            return TERMINATE, b""
        case TerminateResp():
            return TERMINATE | RESP, b""
        case Cancel():
            return CANCEL, struct.pack(">Q", pdu.msg_id)
        case CancelResp():
            return CANCEL | RESP, struct.pack(f">{lay.result}", pdu.success_id)
        case Query():
            return QUERY, _QUERY.pack(_s(pdu.time, 8), pdu.query_type, _s(pdu.query_code, 10), b"")
        case QueryResp():
            head = _QUERY_HEAD.pack(_s(pdu.time, 8), pdu.query_type, _s(pdu.query_code, 10))
            return QUERY | RESP, head + struct.pack(">8I", *pdu.counts)
    raise CmppError(f"cannot encode {pdu!r}")


def encode(sequence: int, pdu: Pdu, version: int = V20) -> bytes:
    command, body = _body(pdu, version)
    return HEADER.pack(HEADER.size + len(body), command, sequence) + body


def decode(command: int, body: bytes, version: int = V20) -> Pdu:
    """Decode one PDU body (the header already split off by the caller) in the negotiated version."""
    try:
        return _decode(command, body, version)
    except (struct.error, IndexError) as e:
        raise CmppError(f"malformed PDU 0x{command:08x}: {e}") from None


def _decode(command: int, body: bytes, version: int) -> Pdu:
    lay = layout(version)
    t = lay.terminal
    if command == CONNECT:
        src, auth, ver, ts = _CONNECT.unpack_from(body)
        return Connect(_u(src), auth, ts, ver)
    if command == CONNECT | RESP:
        # Told apart by size, not by the version we asked for: a 2.0 ISMG answers a 3.0 CONNECT in 2.0.
        code = "I" if len(body) >= 21 else "B"
        status, auth, ver = struct.unpack_from(f">{code}16sB", body)
        return ConnectResp(status, auth, ver)
    if command == SUBMIT:
        msg_id, pk_total, pk_number, reg, level, service, fee_user = struct.unpack_from(">QBBBB10sB", body)
        off = 23
        fee_id = _u(body[off : off + t])
        off += t
        fee_type_t = 0
        if lay.typed:
            fee_type_t = body[off]
            off += 1
        f = struct.unpack_from(">BBB6s2s6s17s17s21sB", body, off)
        off += struct.calcsize(">BBB6s2s6s17s17s21sB")
        n = f[9]
        dests = [_u(body[off + t * i : off + t * (i + 1)]) for i in range(n)]
        off += t * n
        dest_type = 0
        if lay.typed:
            dest_type = body[off]
            off += 1
        length = body[off]
        content = body[off + 1 : off + 1 + length]
        if len(content) != length:
            raise CmppError("submit content shorter than Msg_Length")
        link = _u(body[off + 1 + length : off + 21 + length]) if lay.typed else ""
        return Submit(
            dest_terminal_ids=dests, content=content, msg_fmt=f[2], src_id=_u(f[8]), msg_src=_u(f[3]),
            service_id=_u(service), pk_total=pk_total, pk_number=pk_number, registered_delivery=reg,
            tp_udhi=f[1], msg_level=level, fee_user_type=fee_user, fee_terminal_id=fee_id, tp_pid=f[0],
            fee_type=_u(f[4]), fee_code=_u(f[5]), valid_time=_u(f[6]), at_time=_u(f[7]), msg_id=msg_id,
            fee_terminal_type=fee_type_t, dest_terminal_type=dest_type, link_id=link,
        )
    if command == SUBMIT | RESP:
        return SubmitResp(*struct.unpack_from(f">Q{lay.result}", body))
    if command == DELIVER:
        msg_id, dest_id, service, pid, udhi, fmt = struct.unpack_from(">Q21s10sBBB", body)
        off = 42
        src = _u(body[off : off + t])
        off += t
        src_type = 0
        if lay.typed:
            src_type = body[off]
            off += 1
        reg, length = body[off], body[off + 1]
        content = body[off + 2 : off + 2 + length]
        if len(content) != length:
            raise CmppError("deliver content shorter than Msg_Length")
        link = _u(body[off + 2 + length : off + 22 + length]) if lay.typed else ""
        return Deliver(
            msg_id=msg_id, dest_id=_u(dest_id), service_id=_u(service), tp_pid=pid, tp_udhi=udhi, msg_fmt=fmt,
            src_terminal_id=src, registered_delivery=reg, content=content, src_terminal_type=src_type, link_id=link,
        )
    if command == DELIVER | RESP:
        return DeliverResp(*struct.unpack_from(f">Q{lay.result}", body))
    if command == ACTIVE_TEST:
        return ActiveTest()
    if command == ACTIVE_TEST | RESP:
        return ActiveTestResp(body[0] if body else 0)
    if command == TERMINATE:
        return Terminate()
    if command == TERMINATE | RESP:
        return TerminateResp()
    if command == CANCEL:
        return Cancel(*struct.unpack_from(">Q", body))
    if command == CANCEL | RESP:
        return CancelResp(*struct.unpack_from(f">{lay.result}", body))
    if command == QUERY:
        when, kind, code, _ = _QUERY.unpack_from(body)
        return Query(_u(when), kind, _u(code))
    if command == QUERY | RESP:
        when, kind, code = _QUERY_HEAD.unpack_from(body)
        counts = struct.unpack_from(">8I", body, _QUERY_HEAD.size)
        return QueryResp(_u(when), kind, _u(code), counts)  # type: ignore[arg-type]
    raise CmppError(f"unknown command 0x{command:08x}")


async def read_pdu(reader: object, version: int = V20) -> tuple[int, Pdu]:
    """Read one PDU from an ``asyncio.StreamReader``: (sequence, pdu). EOF raises ``IncompleteReadError``."""
    header = await reader.readexactly(HEADER.size)  # type: ignore[attr-defined]
    length, command, sequence = HEADER.unpack(header)
    if not HEADER.size <= length <= MAX_PDU:
        raise CmppError(f"bad Total_Length {length}")
    body = await reader.readexactly(length - HEADER.size)  # type: ignore[attr-defined]
    return sequence, decode(command, body, version)
