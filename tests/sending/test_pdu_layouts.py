"""SGIP 1.2 and SMGP 3.0 PDUs, byte for byte, against their specifications' field tables.

No independent SGIP or SMGP implementation is installable here (none on PyPI or npm; SMSGate is Java
on Maven Central, which this machine cannot reach), and the specifications give field tables, not hex
examples. So each expected PDU below is assembled by hand, field by field in the specification's
order and widths, independently of the encoder, and the encoder and decoder must agree with it.
"""

from __future__ import annotations

import hashlib

from smsguard.sending import _sgip_protocol as sgip
from smsguard.sending import _smgp_protocol as smgp
from smsguard.sending._long_sms import Reassembler, split_content


def _z(text: str, size: int) -> bytes:
    return text.encode("ascii").ljust(size, b"\0")


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


SEQ = (3010012345, 1202143000, 7)  # node 3 0100 12345, 12-02 14:30:00, counter 7
SEQ_BYTES = _u32(3010012345) + _u32(1202143000) + _u32(7)


def test_sgip_bind_is_61_octets_in_spec_order() -> None:
    body = bytes([1]) + _z("sp", 16) + _z("secret", 16) + b"\0" * 8
    expected = _u32(20 + len(body)) + _u32(0x1) + SEQ_BYTES + body
    assert sgip.encode(SEQ, sgip.Bind(1, "sp", "secret")) == expected and len(expected) == 61
    assert sgip.decode(0x1, body) == sgip.Bind(1, "sp", "secret")


def test_sgip_submit_field_table() -> None:
    content = "您好".encode("utf-16-be")
    body = (
        _z("106900", 21) + _z("", 21) + bytes([1]) + _z("8613012345678", 21) + _z("12345", 5) + _z("SVC", 10)
        + bytes([1]) + _z("0", 6) + _z("0", 6) + bytes([0, 2, 0]) + _z("", 16) + _z("", 16)
        + bytes([1, 0, 0, 8, 0]) + _u32(len(content)) + content + b"\0" * 8
    )
    pdu = sgip.Submit(["8613012345678"], content, sp_number="106900", corp_id="12345", service_type="SVC")
    assert sgip.encode(SEQ, pdu) == _u32(20 + len(body)) + _u32(0x3) + SEQ_BYTES + body
    assert sgip.decode(0x3, body) == pdu


def test_sgip_report_names_the_submit_sequence() -> None:
    body = SEQ_BYTES + bytes([0]) + _z("8613012345678", 21) + bytes([2, 5]) + b"\0" * 8
    report = sgip.decode(0x5, body)
    assert report == sgip.Report(SEQ, "8613012345678", 2, 5, 0)
    assert sgip.encode((1, 2, 3), report)[20:] == body
    assert sgip.sequence_text(SEQ) == "3010012345-1202143000-7"


def test_sgip_responses_and_deliver() -> None:
    assert sgip.encode(SEQ, sgip.Resp(0x80000003, 11))[20:] == bytes([11]) + b"\0" * 8
    body = _z("8613012345678", 21) + _z("106900", 21) + bytes([0, 0, 15]) + _u32(2) + b"TD" + b"\0" * 8
    assert sgip.decode(0x4, body) == sgip.Deliver("8613012345678", "106900", b"TD", 15, 0, 0)


def test_smgp_login_and_its_authenticators() -> None:
    auth = hashlib.md5(b"10690001" + b"\0" * 7 + b"secret" + b"1202143000").digest()
    body = _z("10690001", 8) + auth + bytes([2]) + _u32(1202143000) + bytes([0x30])
    pdu = smgp.Login("10690001", smgp.authenticator_client("10690001", "secret", "1202143000"), 2, 1202143000)
    assert smgp.encode(9, pdu) == _u32(12 + 30) + _u32(1) + _u32(9) + body
    assert smgp.authenticator_server(0, auth, "secret") == hashlib.md5(b"\0\0\0\0" + auth + b"secret").digest()


def test_smgp_submit_with_tlvs() -> None:
    content = bytes([5, 0, 3, 0x42, 2, 1]) + "第一段".encode("utf-16-be")
    tlvs = bytes.fromhex("0002" "0001" "01") + bytes.fromhex("0009" "0001" "02") + bytes.fromhex("000a" "0001" "01")
    body = (
        bytes([6, 1, 0]) + _z("", 10) + _z("00", 2) + _z("000000", 6) + _z("000000", 6) + bytes([8])
        + _z("", 17) + _z("", 17) + _z("106900", 21) + _z("", 21) + bytes([1]) + _z("13312345678", 21)
        + bytes([len(content)]) + content + b"\0" * 8 + tlvs
    )
    pdu = smgp.Submit(["13312345678"], content, src_term_id="106900",
                      tlvs={smgp.TAG_TP_UDHI: b"\x01", smgp.TAG_PK_TOTAL: b"\x02", smgp.TAG_PK_NUMBER: b"\x01"})
    assert smgp.encode(1, pdu)[12:] == body
    assert smgp.decode(smgp.SUBMIT, body) == pdu


def test_smgp_msg_id_is_bcd_and_the_report_is_122_octets() -> None:
    msg_id = smgp.make_msg_id(123456, 12, 2, 14, 30, 789)
    assert msg_id == bytes.fromhex("12345612021430000789") and smgp.msg_id_text(msg_id) == "12345612021430000789"
    text = (b"id:" + msg_id + b" sub:001 dlvrd:001 submit date:2612021430 done date:2612021431 stat:DELIVRD"
            b" err:000 text:" + b"\0" * 20)
    assert len(text) == smgp.REPORT_SIZE == 122
    report = smgp.decode_report(text)
    assert (report.msg_id, report.stat, report.err, report.done_date) == (msg_id, "DELIVRD", "000", "2612021431")
    assert smgp.encode_report(report) == text


def test_long_mo_reassembly_out_of_order_duplicates_and_partial() -> None:
    content = ("退订" * 80).encode("utf-16-be")
    parts = split_content(content, 7)
    r = Reassembler(timeout=0.0)
    assert r.add("138", "1069", 8, *parts[2]) is None
    assert r.add("138", "1069", 8, *parts[0]) is None
    assert r.add("138", "1069", 8, *parts[0]) is None and r.duplicates == 1  # the same index twice
    assert r.add("138", "1069", 8, *parts[1]) == "退订" * 80
    assert r.add("139", "1069", 8, *parts[0]) is None
    assert r.expired() == [("139", "1069", "退订" * 33 + "退")]  # only what came, when the rest never does


def test_cmpp30_deliver_report_and_responses_use_the_30_widths() -> None:
    from smsguard.sending import _cmpp_protocol as cmpp

    report = (0x1122334455667788).to_bytes(8, "big") + _z("DELIVRD", 7) + _z("2612021430", 10) + _z("2612021431", 10)
    report += _z("13800138000", 32) + _u32(5)  # 3.0: Dest_terminal_Id is 32 octets (2.0: 21)
    body = (
        (0x0102030405060708).to_bytes(8, "big") + _z("106900", 21) + _z("MI", 10) + bytes([0, 0, 0])
        + _z("13800138000", 32) + bytes([0])  # Src_terminal_Id 32 + Src_terminal_type 1
        + bytes([1, len(report)]) + report + _z("", 20)  # LinkID 20 (2.0: Reserved 8)
    )
    deliver = cmpp.decode(cmpp.DELIVER, body, cmpp.V30)
    assert isinstance(deliver, cmpp.Deliver) and deliver.registered_delivery == 1
    assert cmpp.encode(3, deliver, cmpp.V30)[12:] == body
    parsed = cmpp.decode_report(deliver.content, cmpp.V30)
    assert (parsed.msg_id, parsed.stat, parsed.dest_terminal_id) == (0x1122334455667788, "DELIVRD", "13800138000")
    # SUBMIT_RESP / DELIVER_RESP Result and CONNECT_RESP Status: 4 octets in 3.0, 1 in 2.0
    assert cmpp.encode(1, cmpp.SubmitResp(7, 8), cmpp.V30)[12:] == (7).to_bytes(8, "big") + _u32(8)
    assert cmpp.encode(1, cmpp.SubmitResp(7, 8), cmpp.V20)[12:] == (7).to_bytes(8, "big") + bytes([8])
    assert len(cmpp.encode(1, cmpp.ConnectResp(0, b"\0" * 16, 0x30), cmpp.V30)) == 12 + 21
    assert len(cmpp.encode(1, cmpp.ConnectResp(0, b"\0" * 16, 0x20), cmpp.V20)) == 12 + 18


def test_a_text_over_255_parts_is_a_permanent_refusal() -> None:
    from smsguard.sending import LongMessageError, PermanentGatewayError

    try:
        split_content(b"x" * (134 * 256), 1)
    except LongMessageError as e:
        assert isinstance(e, PermanentGatewayError) and not e.transient and e.code == "gateway.message_too_long"
    else:
        raise AssertionError("not refused")


def test_smpp_submit_sm_is_byte_for_byte_what_smpplib_generates() -> None:
    """The gateway encodes submit_sm itself (speed); smpplib, which the SMPP peers are tested against, is the
    reference: for short, long (UDH parts), international and sender-less messages the bytes are the same."""
    import smpplib.consts as c
    import smpplib.gsm
    import smpplib.smpp

    from smsguard.sending._smpp import _Client, _SequenceGenerator, submit_sm_bytes

    client = _Client("127.0.0.1", 1, sequence_generator=_SequenceGenerator(), allow_unknown_opt_params=True)
    cases = [("【示例】您的订单已发货。", "+8613800138000", "106900"), ("hello", "13800138000", ""),
             ("长" * 150, "13900000001", "10690001234567890123")]
    for text, phone, sender in cases:
        parts, coding, esm_class = smpplib.gsm.make_parts(text, encoding=c.SMPP_ENCODING_ISO10646)
        for part in parts:
            ton = c.SMPP_TON_INTL if phone.startswith("+") else c.SMPP_TON_UNK
            pdu = smpplib.smpp.make_pdu(
                "submit_sm", client=client, source_addr_ton=c.SMPP_TON_UNK, source_addr_npi=c.SMPP_NPI_UNK,
                source_addr=sender, dest_addr_ton=ton, dest_addr_npi=c.SMPP_NPI_ISDN,
                destination_addr=phone.lstrip("+"), short_message=part, data_coding=coding, esm_class=esm_class,
                registered_delivery=c.SMPP_SMSC_DELIVERY_RECEIPT_BOTH,
            )
            ours = submit_sm_bytes(pdu.sequence, source_addr=sender, dest_addr_ton=ton,
                                   destination_addr=phone.lstrip("+"), esm_class=esm_class, data_coding=coding,
                                   short_message=part, registered_delivery=c.SMPP_SMSC_DELIVERY_RECEIPT_BOTH)
            assert ours == pdu.generate()
    assert submit_sm_bytes(1, source_addr="1" * 21, dest_addr_ton=0, destination_addr="1", esm_class=0,
                           data_coding=8, short_message=b"x", registered_delivery=1) is None  # smpplib's to refuse
