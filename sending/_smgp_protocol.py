"""SMGP 3.0 (China Telecom Short Message Gateway Protocol) PDUs: pure encode/decode, no I/O.

Written from 《中国电信短消息网关协议 SMGP》 V3.0 (2002/2003), checking field layouts against the public
field tables of Lihuanghe/SMSGate. Every PDU is a 12-byte header (PacketLength, RequestID, SequenceID,
big-endian uint32) and a body; a response's RequestID is the request's | 0x80000000. Strings are
ASCII, NUL-padded; MsgID is 10 octets (BCD: SMGW code 6 digits, MMDDHHMM, sequence 6 digits).

* Login: ClientID 8, AuthenticatorClient 16 (= MD5(ClientID + 7 zero bytes + secret + MMDDHHMMSS)),
  LoginMode 1 (0 send, 1 receive, 2 transmit), TimeStamp 4, ClientVersion 1 (0x30).
* Login_Resp: Status 4, AuthenticatorServer 16 (= MD5(Status + AuthenticatorClient + secret)), ServerVersion 1.
* Submit: MsgType 1 (6 = MT), NeedReport 1, Priority 1, ServiceID 10, FeeType 2, FeeCode 6, FixedFee 6,
  MsgFormat 1, ValidTime 17, AtTime 17, SrcTermID 21, ChargeTermID 21, DestTermIDCount 1,
  DestTermID 21×N, MsgLength 1, MsgContent, Reserve 8, then optional TLVs (Tag 2, Length 2, Value).
* Submit_Resp: MsgID 10, Status 4 (0 ok; 1 "system busy" is the one worth retrying).
* Deliver: MsgID 10, IsReport 1, MsgFormat 1, RecvTime 14, SrcTermID 21, DestTermID 21, MsgLength 1,
  MsgContent, Reserve 8, TLVs. A status report's MsgContent is text with fixed-width fields:
  ``id:`` MsgID(10 octets, binary) `` sub:``3 `` dlvrd:``3 `` submit date:``10 `` done date:``10
  `` stat:``7 `` err:``3 `` text:``20.
* Deliver_Resp: MsgID 10, Status 4. Active_Test / Active_Test_Resp / Exit / Exit_Resp: empty.

TLV tags used: TP_pid 0x0001, TP_udhi 0x0002, LinkID 0x0003, PkTotal 0x0009, PkNumber 0x000A,
SubmitMsgType 0x000B, SrcTermType 0x000D, MsgSrc 0x0010; unknown tags are kept as they came.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct

from smsguard.core import ProtocolError
from smsguard.sending._fixed_fields import pad as _s
from smsguard.sending._fixed_fields import unpad as _u

LOGIN = 0x00000001
SUBMIT = 0x00000002
DELIVER = 0x00000003
ACTIVE_TEST = 0x00000004
EXIT = 0x00000006
RESP = 0x80000000
VERSION = 0x30

LOGIN_SEND, LOGIN_RECEIVE, LOGIN_TRANSMIT = 0, 1, 2
MSG_TYPE_MT = 6

TAG_TP_PID = 0x0001
TAG_TP_UDHI = 0x0002
TAG_LINK_ID = 0x0003
TAG_PK_TOTAL = 0x0009
TAG_PK_NUMBER = 0x000A
TAG_SUBMIT_MSG_TYPE = 0x000B
TAG_SRC_TERM_TYPE = 0x000D
TAG_MSG_SRC = 0x0010

STATUS_OK = 0
STATUS_BUSY = 1  # 系统忙: back off and retry
STATUS_AUTH = 21  # 认证错

HEADER = struct.Struct(">III")
MAX_PDU = 4096


class SmgpError(ProtocolError):
    """An SMGP PDU cannot be encoded or decoded."""

    code = "gateway.smgp.malformed"


def authenticator_client(client_id: str, secret: str, ts: str) -> bytes:
    return hashlib.md5(client_id.encode("ascii") + b"\0" * 7 + secret.encode("utf-8") + ts.encode("ascii")).digest()


def authenticator_server(status: int, auth_client: bytes, secret: str) -> bytes:
    return hashlib.md5(status.to_bytes(4, "big") + auth_client + secret.encode("utf-8")).digest()


def make_msg_id(smgw_code: int, month: int, day: int, hour: int, minute: int, sequence: int) -> bytes:
    """10 octets, BCD: SMGW code (6 digits), MMDDHHMM, sequence (6 digits)."""
    digits = f"{smgw_code % 1_000_000:06d}{month:02d}{day:02d}{hour:02d}{minute:02d}{sequence % 1_000_000:06d}"
    return bytes.fromhex(digits)


def msg_id_text(msg_id: bytes) -> str:
    """Our text form of a MsgID: its 20 BCD digits (= its hex), the way SMGW operators print it."""
    return msg_id.hex()


# -- TLVs -----------------------------------------------------------------------------------------------


def encode_tlvs(tlvs: dict[int, bytes]) -> bytes:
    return b"".join(struct.pack(">HH", tag, len(value)) + value for tag, value in tlvs.items())


def decode_tlvs(raw: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i + 4 <= len(raw):
        tag, length = struct.unpack_from(">HH", raw, i)
        value = raw[i + 4 : i + 4 + length]
        if len(value) != length:
            raise SmgpError(f"TLV 0x{tag:04x} runs past the end of the PDU")
        out[tag] = value
        i += 4 + length
    if i != len(raw):
        raise SmgpError("trailing octets after the last TLV")
    return out


def tlv_byte(tlvs: dict[int, bytes], tag: int, default: int = 0) -> int:
    value = tlvs.get(tag)
    return value[0] if value else default


# -- PDUs -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Login:
    client_id: str
    authenticator: bytes
    login_mode: int
    timestamp: int
    version: int = VERSION


@dataclasses.dataclass(slots=True)
class LoginResp:
    status: int
    authenticator: bytes
    version: int = VERSION


@dataclasses.dataclass(slots=True)
class Submit:
    dest_term_ids: list[str]
    content: bytes
    msg_format: int = 8
    src_term_id: str = ""
    need_report: int = 1
    msg_type: int = MSG_TYPE_MT
    priority: int = 0
    service_id: str = ""
    fee_type: str = "00"
    fee_code: str = "000000"
    fixed_fee: str = "000000"
    valid_time: str = ""
    at_time: str = ""
    charge_term_id: str = ""
    tlvs: dict[int, bytes] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class SubmitResp:
    msg_id: bytes
    status: int


@dataclasses.dataclass(slots=True)
class Deliver:
    msg_id: bytes
    is_report: int
    msg_format: int
    recv_time: str
    src_term_id: str
    dest_term_id: str
    content: bytes
    tlvs: dict[int, bytes] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class DeliverResp:
    msg_id: bytes
    status: int = 0


@dataclasses.dataclass(slots=True)
class Report:
    msg_id: bytes
    stat: str
    err: str = "000"
    submit_date: str = ""
    done_date: str = ""
    sub: str = "001"
    dlvrd: str = "001"
    text: bytes = b""


@dataclasses.dataclass(slots=True)
class ActiveTest:
    pass


@dataclasses.dataclass(slots=True)
class ActiveTestResp:
    pass


@dataclasses.dataclass(slots=True)
class Exit:
    pass


@dataclasses.dataclass(slots=True)
class ExitResp:
    pass


Pdu = (
    Login | LoginResp | Submit | SubmitResp | Deliver | DeliverResp | ActiveTest | ActiveTestResp | Exit | ExitResp
)

_LOGIN = struct.Struct(">8s16sBIB")
_LOGIN_RESP = struct.Struct(">I16sB")
_SUBMIT_HEAD = struct.Struct(">BBB10s2s6s6sB17s17s21s21sB")
_ID_STATUS = struct.Struct(">10sI")
_DELIVER_HEAD = struct.Struct(">10sBB14s21s21sB")
_EMPTY = {ACTIVE_TEST: ActiveTest, ACTIVE_TEST | RESP: ActiveTestResp, EXIT: Exit, EXIT | RESP: ExitResp}


def encode_report(report: Report) -> bytes:
    return (
        b"id:" + report.msg_id.ljust(10, b"\0")[:10]
        + b" sub:" + _s(report.sub, 3)
        + b" dlvrd:" + _s(report.dlvrd, 3)
        + b" submit date:" + _s(report.submit_date, 10)
        + b" done date:" + _s(report.done_date, 10)
        + b" stat:" + _s(report.stat, 7)
        + b" err:" + _s(report.err, 3)
        + b" text:" + report.text.ljust(20, b"\0")[:20]
    )


_REPORT_FIELDS = (("id:", 10), (" sub:", 3), (" dlvrd:", 3), (" submit date:", 10), (" done date:", 10),
                  (" stat:", 7), (" err:", 3), (" text:", 20))
REPORT_SIZE = sum(len(label) + size for label, size in _REPORT_FIELDS)  # 122


def decode_report(content: bytes) -> Report:
    if len(content) < REPORT_SIZE - 20:  # some SMGWs leave the text field out
        raise SmgpError(f"status report is {len(content)} octets, expected {REPORT_SIZE}")
    values: list[bytes] = []
    i = 0
    for label, size in _REPORT_FIELDS:
        if content[i : i + len(label)].lower() != label.encode("ascii"):
            raise SmgpError(f"status report: expected {label!r} at octet {i}")
        i += len(label)
        values.append(content[i : i + size])
        i += size
    msg_id, sub, dlvrd, submit, done, stat, err, text = values
    return Report(msg_id, _u(stat).strip(), _u(err), _u(submit), _u(done), _u(sub), _u(dlvrd), text)


def _body(pdu: Pdu) -> tuple[int, bytes]:
    match pdu:
        case Login():
            return LOGIN, _LOGIN.pack(_s(pdu.client_id, 8), pdu.authenticator, pdu.login_mode, pdu.timestamp,
                                      pdu.version)
        case LoginResp():
            return LOGIN | RESP, _LOGIN_RESP.pack(pdu.status, pdu.authenticator, pdu.version)
        case Submit():
            if len(pdu.content) > 255 or not 1 <= len(pdu.dest_term_ids) <= 100:
                raise SmgpError("submit content over 255 octets or bad destination count")
            head = _SUBMIT_HEAD.pack(
                pdu.msg_type, pdu.need_report, pdu.priority, _s(pdu.service_id, 10), _s(pdu.fee_type, 2),
                _s(pdu.fee_code, 6), _s(pdu.fixed_fee, 6), pdu.msg_format, _s(pdu.valid_time, 17),
                _s(pdu.at_time, 17), _s(pdu.src_term_id, 21), _s(pdu.charge_term_id, 21), len(pdu.dest_term_ids),
            )
            dests = b"".join(_s(d, 21) for d in pdu.dest_term_ids)
            body = head + dests + bytes([len(pdu.content)]) + pdu.content + b"\0" * 8 + encode_tlvs(pdu.tlvs)
            return SUBMIT, body
        case SubmitResp():
            return SUBMIT | RESP, _ID_STATUS.pack(pdu.msg_id, pdu.status)
        case Deliver():
            head = _DELIVER_HEAD.pack(pdu.msg_id, pdu.is_report, pdu.msg_format, _s(pdu.recv_time, 14),
                                      _s(pdu.src_term_id, 21), _s(pdu.dest_term_id, 21), len(pdu.content))
            return DELIVER, head + pdu.content + b"\0" * 8 + encode_tlvs(pdu.tlvs)
        case DeliverResp():
            return DELIVER | RESP, _ID_STATUS.pack(pdu.msg_id, pdu.status)
    for command, cls in _EMPTY.items():
        if type(pdu) is cls:
            return command, b""
    raise SmgpError(f"cannot encode {pdu!r}")


def encode(sequence: int, pdu: Pdu) -> bytes:
    command, body = _body(pdu)
    return HEADER.pack(HEADER.size + len(body), command, sequence) + body


def decode(command: int, body: bytes) -> Pdu:
    try:
        return _decode(command, body)
    except (struct.error, IndexError) as e:
        raise SmgpError(f"malformed PDU 0x{command:08x}: {e}") from None


def _decode(command: int, body: bytes) -> Pdu:
    if command == LOGIN:
        cid, auth, mode, ts, ver = _LOGIN.unpack_from(body)
        return Login(_u(cid), auth, mode, ts, ver)
    if command == LOGIN | RESP:
        return LoginResp(*_LOGIN_RESP.unpack_from(body))
    if command == SUBMIT:
        f = _SUBMIT_HEAD.unpack_from(body)
        off = _SUBMIT_HEAD.size
        n = f[12]
        dests = [_u(body[off + 21 * i : off + 21 * (i + 1)]) for i in range(n)]
        off += 21 * n
        length = body[off]
        content = body[off + 1 : off + 1 + length]
        if len(content) != length:
            raise SmgpError("submit content shorter than MsgLength")
        tlvs = decode_tlvs(body[off + 1 + length + 8 :])
        return Submit(
            dest_term_ids=dests, content=content, msg_format=f[7], src_term_id=_u(f[10]), need_report=f[1],
            msg_type=f[0], priority=f[2], service_id=_u(f[3]), fee_type=_u(f[4]), fee_code=_u(f[5]),
            fixed_fee=_u(f[6]), valid_time=_u(f[8]), at_time=_u(f[9]), charge_term_id=_u(f[11]), tlvs=tlvs,
        )
    if command in (SUBMIT | RESP, DELIVER | RESP):
        msg_id, status = _ID_STATUS.unpack_from(body)
        return (SubmitResp if command == SUBMIT | RESP else DeliverResp)(msg_id, status)
    if command == DELIVER:
        msg_id, is_report, fmt, recv, src, dest, length = _DELIVER_HEAD.unpack_from(body)
        off = _DELIVER_HEAD.size
        content = body[off : off + length]
        if len(content) != length:
            raise SmgpError("deliver content shorter than MsgLength")
        tlvs = decode_tlvs(body[off + length + 8 :])
        return Deliver(msg_id, is_report, fmt, _u(recv), _u(src), _u(dest), content, tlvs)
    if command in _EMPTY:
        return _EMPTY[command]()
    raise SmgpError(f"unknown RequestID 0x{command:08x}")


async def read_pdu(reader: object) -> tuple[int, Pdu]:
    header = await reader.readexactly(HEADER.size)  # type: ignore[attr-defined]
    length, command, sequence = HEADER.unpack(header)
    if not HEADER.size <= length <= MAX_PDU:
        raise SmgpError(f"bad PacketLength {length}")
    body = await reader.readexactly(length - HEADER.size)  # type: ignore[attr-defined]
    return sequence, decode(command, body)
