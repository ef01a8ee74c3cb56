"""SGIP 1.2 (China Unicom Short message Gateway Interface Protocol) PDUs: pure encode/decode, no I/O.

Written from 《中国联通短消息网关系统接口协议 SGIP》 V1.2 (2002), checking field layouts against the public
field tables of Lihuanghe/SMSGate. Every PDU is a 20-byte header — Message Length 4, Command ID 4 and
a 12-octet Sequence Number made of three big-endian uint32: the sender's node id (an SP's is
3AAAAQQQQQ: 3, area code, corp code), the time MMDDhhmmss as a decimal number, and a counter — then a
body. A response repeats its request's sequence number; Command ID is the request's | 0x80000000.

* Bind: Login Type 1 (1 = SP connects to the SMG, 2 = the SMG connects to the SP), Login Name 16,
  Login Password 16, Reserve 8. Bind_Resp: Result 1, Reserve 8. Unbind / Unbind_Resp: empty.
* Submit: SPNumber 21, ChargeNumber 21, UserCount 1, UserNumber 21×N, CorpId 5, ServiceType 10,
  FeeType 1, FeeValue 6, GivenValue 6, AgentFlag 1, MorelatetoMTFlag 1, Priority 1, ExpireTime 16,
  ScheduleTime 16, ReportFlag 1 (1 = always report), TP_pid 1, TP_udhi 1, MessageCoding 1,
  MessageType 1, MessageLength 4, MessageContent, Reserve 8. Submit_Resp: Result 1, Reserve 8.
* Deliver (MO, SMG → SP): UserNumber 21, SPNumber 21, TP_pid 1, TP_udhi 1, MessageCoding 1,
  MessageLength 4, MessageContent, Reserve 8. Deliver_Resp: Result 1, Reserve 8.
* Report (SMG → SP): SubmitSequenceNumber 12 (the sequence number of the Submit it is about — SGIP
  has no message id: our own submit's sequence number is the id), ReportType 1, UserNumber 21,
  State 1 (0 delivered, 1 waiting, 2 failed), ErrorCode 1, Reserve 8. Report_Resp: Result 1, Reserve 8.

Results: 0 ok; 1 illegal login; 11 node busy and 33 queue full are worth retrying; others refuse.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct

from smsguard.core import ProtocolError
from smsguard.sending._fixed_fields import pad as _s
from smsguard.sending._fixed_fields import unpad as _u

BIND = 0x1
UNBIND = 0x2
SUBMIT = 0x3
DELIVER = 0x4
REPORT = 0x5
RESP = 0x80000000

LOGIN_SP_TO_SMG = 1
LOGIN_SMG_TO_SP = 2

RESULT_OK = 0
RESULT_ILLEGAL_LOGIN = 1
RESULT_NODE_BUSY = 11
RESULT_QUEUE_FULL = 33
RETRYABLE_RESULTS = frozenset({RESULT_NODE_BUSY, RESULT_QUEUE_FULL})

STATE_DELIVERED, STATE_WAITING, STATE_FAILED = 0, 1, 2

HEADER = struct.Struct(">II III")
MAX_PDU = 4096

Sequence = tuple[int, int, int]  # (node id, MMDDhhmmss, counter)


class SgipError(ProtocolError):
    """An SGIP PDU cannot be encoded or decoded."""

    code = "gateway.sgip.malformed"


def sequence(node_id: int, counter: int, now: dt.datetime | None = None) -> Sequence:
    """A Sequence Number: node id, the time as MMDDhhmmss, counter."""
    return (node_id & 0xFFFFFFFF, int((now or dt.datetime.now()).strftime("%m%d%H%M%S")), counter & 0xFFFFFFFF)


def sequence_text(seq: Sequence) -> str:
    """Our text form of a sequence number (the id of a submitted part): node, time and counter, decimal."""
    return f"{seq[0]}-{seq[1]:010d}-{seq[2]}"


# -- PDUs -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Bind:
    login_type: int
    login_name: str
    login_password: str


@dataclasses.dataclass(slots=True)
class Unbind:
    pass


@dataclasses.dataclass(slots=True)
class Submit:
    user_numbers: list[str]
    content: bytes
    sp_number: str = ""
    charge_number: str = ""
    corp_id: str = ""
    service_type: str = ""
    fee_type: int = 1
    fee_value: str = "0"
    given_value: str = "0"
    agent_flag: int = 0
    morelateto_mt_flag: int = 2
    priority: int = 0
    expire_time: str = ""
    schedule_time: str = ""
    report_flag: int = 1
    tp_pid: int = 0
    tp_udhi: int = 0
    message_coding: int = 8
    message_type: int = 0


@dataclasses.dataclass(slots=True)
class Deliver:
    user_number: str
    sp_number: str
    content: bytes
    message_coding: int = 8
    tp_pid: int = 0
    tp_udhi: int = 0


@dataclasses.dataclass(slots=True)
class Report:
    submit_sequence: Sequence
    user_number: str
    state: int
    error_code: int = 0
    report_type: int = 0


@dataclasses.dataclass(slots=True)
class Resp:
    """Bind_Resp, Submit_Resp, Deliver_Resp, Report_Resp (Result 1, Reserve 8) and Unbind_Resp (empty)."""

    command: int
    result: int = 0


Pdu = Bind | Unbind | Submit | Deliver | Report | Resp

_BIND = struct.Struct(">B16s16s8s")
_RESULT = struct.Struct(">B8s")
_SUBMIT_MID = struct.Struct(">5s10sB6s6sBBB16s16sBBBBBI")
_DELIVER_HEAD = struct.Struct(">21s21sBBBI")
_REPORT = struct.Struct(">IIIB21sBB8s")


def _body(pdu: Pdu) -> tuple[int, bytes]:
    match pdu:
        case Bind():
            return BIND, _BIND.pack(pdu.login_type, _s(pdu.login_name, 16), _s(pdu.login_password, 16), b"")
        case Unbind():
            return UNBIND, b""
        case Submit():
            if not 1 <= len(pdu.user_numbers) <= 100:
                raise SgipError("UserCount must be 1..100")
            head = _s(pdu.sp_number, 21) + _s(pdu.charge_number, 21) + bytes([len(pdu.user_numbers)])
            head += b"".join(_s(n, 21) for n in pdu.user_numbers)
            mid = _SUBMIT_MID.pack(
                _s(pdu.corp_id, 5), _s(pdu.service_type, 10), pdu.fee_type, _s(pdu.fee_value, 6),
                _s(pdu.given_value, 6), pdu.agent_flag, pdu.morelateto_mt_flag, pdu.priority,
                _s(pdu.expire_time, 16), _s(pdu.schedule_time, 16), pdu.report_flag, pdu.tp_pid, pdu.tp_udhi,
                pdu.message_coding, pdu.message_type, len(pdu.content),
            )
            return SUBMIT, head + mid + pdu.content + b"\0" * 8
        case Deliver():
            head = _DELIVER_HEAD.pack(_s(pdu.user_number, 21), _s(pdu.sp_number, 21), pdu.tp_pid, pdu.tp_udhi,
                                      pdu.message_coding, len(pdu.content))
            return DELIVER, head + pdu.content + b"\0" * 8
        case Report():
            node, when, counter = pdu.submit_sequence
            return REPORT, _REPORT.pack(node, when, counter, pdu.report_type, _s(pdu.user_number, 21), pdu.state,
                                        pdu.error_code, b"")
        case Resp():
            if pdu.command == UNBIND | RESP:
                return pdu.command, b""
            return pdu.command, _RESULT.pack(pdu.result, b"")
    raise SgipError(f"cannot encode {pdu!r}")


def encode(seq: Sequence, pdu: Pdu) -> bytes:
    command, body = _body(pdu)
    return HEADER.pack(HEADER.size + len(body), command, *seq) + body


def decode(command: int, body: bytes) -> Pdu:
    try:
        return _decode(command, body)
    except (struct.error, IndexError) as e:
        raise SgipError(f"malformed PDU 0x{command:08x}: {e}") from None


def _decode(command: int, body: bytes) -> Pdu:
    if command == BIND:
        login_type, name, password, _ = _BIND.unpack_from(body)
        return Bind(login_type, _u(name), _u(password))
    if command == UNBIND:
        return Unbind()
    if command == SUBMIT:
        sp_number, charge, count = _u(body[:21]), _u(body[21:42]), body[42]
        off = 43
        users = [_u(body[off + 21 * i : off + 21 * (i + 1)]) for i in range(count)]
        off += 21 * count
        f = _SUBMIT_MID.unpack_from(body, off)
        off += _SUBMIT_MID.size
        length = f[15]
        content = body[off : off + length]
        if len(content) != length:
            raise SgipError("submit content shorter than MessageLength")
        return Submit(
            user_numbers=users, content=content, sp_number=sp_number, charge_number=charge, corp_id=_u(f[0]),
            service_type=_u(f[1]), fee_type=f[2], fee_value=_u(f[3]), given_value=_u(f[4]), agent_flag=f[5],
            morelateto_mt_flag=f[6], priority=f[7], expire_time=_u(f[8]), schedule_time=_u(f[9]),
            report_flag=f[10], tp_pid=f[11], tp_udhi=f[12], message_coding=f[13], message_type=f[14],
        )
    if command == DELIVER:
        user, sp_number, pid, udhi, coding, length = _DELIVER_HEAD.unpack_from(body)
        content = body[_DELIVER_HEAD.size : _DELIVER_HEAD.size + length]
        if len(content) != length:
            raise SgipError("deliver content shorter than MessageLength")
        return Deliver(_u(user), _u(sp_number), content, coding, pid, udhi)
    if command == REPORT:
        node, when, counter, report_type, user, state, error, _ = _REPORT.unpack_from(body)
        return Report((node, when, counter), _u(user), state, error, report_type)
    if command == UNBIND | RESP:
        return Resp(command)
    if command & RESP and command & ~RESP in (BIND, SUBMIT, DELIVER, REPORT):
        return Resp(command, _RESULT.unpack_from(body)[0])
    raise SgipError(f"unknown Command ID 0x{command:08x}")


async def read_pdu(reader: object) -> tuple[Sequence, Pdu]:
    header = await reader.readexactly(HEADER.size)  # type: ignore[attr-defined]
    length, command, node, when, counter = HEADER.unpack(header)
    if not HEADER.size <= length <= MAX_PDU:
        raise SgipError(f"bad Message Length {length}")
    body = await reader.readexactly(length - HEADER.size)  # type: ignore[attr-defined]
    return (node, when, counter), decode(command, body)
