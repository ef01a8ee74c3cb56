"""CMPP against code no one here wrote: two independent clients from PyPI.

* ``cmppy`` 0.3 — a CMPP **3.0** client (CONNECT, SUBMIT, TERMINATE; blocking socket, no DELIVER);
* ``pycmpp`` 2.0.2 — a CMPP **2.0** client (CONNECT, SUBMIT with long-message UDH, ACTIVE_TEST, TERMINATE).

Neither ships an ISMG (server) side, and no independent CMPP server is on PyPI or npm, so our CLIENT is
checked against them at the byte level: its SUBMIT and CONNECT PDUs must equal (or decode from) what
the independent implementations build for the same fields. Our ISMG simulator (the peer every adapter
test uses) is checked against them over TCP: each independent client connects, authenticates and
submits to it in its own version.
"""

from __future__ import annotations

import socket
import struct

import pytest
from sending_peers.processes import CMPP_ACCOUNT, cmpp_peer

from smsguard.sending import _cmpp_protocol as p

cmppy = pytest.importorskip("cmppy")
pycmpp_request = pytest.importorskip("pycmpp.request")
pycmpp_response = pytest.importorskip("pycmpp.response")
SP_ID, SECRET = CMPP_ACCOUNT
TEXT = "【示例银行】您的验证码是123456"


def _read_frame(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 12:
        head += sock.recv(12 - len(head))
    (length,) = struct.unpack(">I", head[:4])
    body = b""
    while len(body) < length - 12:
        body += sock.recv(length - 12 - len(body))
    return head + body


def _until(sock: socket.socket, command: int) -> bytes:
    for _ in range(20):
        frame = _read_frame(sock)
        if struct.unpack(">I", frame[4:8])[0] == command:
            return frame
    raise AssertionError(f"no 0x{command:08x}")


# -- our client's PDUs == the independent implementations' ------------------------------------------


def test_our_cmpp30_submit_is_byte_equal_to_cmppy() -> None:
    from cmppy.request import SubmitReq

    theirs = SubmitReq(SP_ID, TEXT, src_id="106900", dest_terminal_id=["13800138000"], registered_delivery=1,
                       service_id="MI", fee_usertype=2, feecode="103013").message
    ours = p.encode(
        0,
        p.Submit(dest_terminal_ids=["13800138000"], content=TEXT.encode("utf-16-be"), msg_fmt=8, src_id="106900",
                 msg_src=SP_ID, service_id="MI", fee_user_type=2, fee_code="103013", registered_delivery=1),
        p.V30,
    )
    assert ours[12:] == theirs[12:] and ours[:8] == theirs[:8]  # same length, command and body
    decoded = p.decode(p.SUBMIT, theirs[12:], p.V30)
    assert isinstance(decoded, p.Submit)
    assert (decoded.dest_terminal_ids, p.decode_text(decoded.msg_fmt, decoded.content)) == (["13800138000"], TEXT)


def test_our_cmpp20_submit_is_byte_equal_to_pycmpp() -> None:
    theirs = pycmpp_request.SubmitRequestInstance().create(
        msg_src=SP_ID, msg_content=TEXT, dest_terminal_id=["13800138000"], src_id="106900", registered_delivery=1
    )
    ours = p.encode(
        0,
        p.Submit(dest_terminal_ids=["13800138000"], content=TEXT.encode("utf-16-be"), msg_fmt=8, src_id="106900",
                 msg_src=SP_ID, fee_user_type=2, registered_delivery=1),
        p.V20,
    )
    assert ours[12:] == theirs[12:] and ours[:8] == theirs[:8]


def test_their_connect_authenticates_with_our_md5() -> None:
    from cmppy.request import ConnectReq

    for raw, version in ((ConnectReq(SP_ID, SECRET).message, p.V30),
                         (pycmpp_request.ConnectRequestInstance().create(SP_ID, SECRET), p.V20)):
        connect = p.decode(p.CONNECT, raw[12:])
        # pycmpp says 0x21 (2.1): the major version (high nibble) is what ISMGs compare
        assert isinstance(connect, p.Connect) and connect.version >> 4 == version >> 4
        assert connect.authenticator == p.authenticator_source(SP_ID, SECRET, f"{connect.timestamp:010d}")


# -- the independent clients against our ISMG simulator, over TCP ------------------------------------


def test_cmppy_cmpp30_client_submits_to_our_ismg() -> None:
    from cmppy.request import SubmitReq

    with cmpp_peer() as peer:
        peer.start()
        client = cmppy.Cmppy("127.0.0.1", peer.port, SP_ID, SECRET)
        # registered_delivery=0: cmppy cannot parse a DELIVER, so no report is asked for
        res = client.request(SubmitReq(SP_ID, "hello from cmppy", src_id="106900", dest_terminal_id=["13800138000"]))
        assert res is not None and res.result == 0 and res.msg_id != 0


def test_pycmpp_cmpp20_client_connects_and_submits_a_long_message_to_our_ismg() -> None:
    from pycmpp.utils import split_message

    with cmpp_peer(max_version=0x20) as peer:
        peer.start()
        sock = socket.create_connection(("127.0.0.1", peer.port), 5)
        connect = pycmpp_request.ConnectRequestInstance()
        sock.sendall(connect.create(SP_ID, SECRET))
        resp = pycmpp_response.ConnectResponseInstance()
        resp.resolve(_until(sock, p.CONNECT | p.RESP))
        assert resp.status == 0 and resp.version == 0x20
        assert resp.authenticator_ISMG == p.authenticator_ismg(0, connect.auth_source, SECRET, p.V20)
        parts = split_message("双十一大促全场五折起，详情请见会员中心。" * 5)
        for n, part in enumerate(parts, start=1):
            head = bytes([5, 0, 3, 0x42, len(parts), n])
            sock.sendall(pycmpp_request.SubmitRequestInstance().create(
                msg_src=SP_ID, msg_content=part, msg_head=head, dest_terminal_id=["13800138000"], src_id="106900",
                pk_total=len(parts), pk_number=n, tp_udhi=1, registered_delivery=1))
            submit = pycmpp_response.SubmitResponseInstance()
            submit.resolve(_until(sock, p.SUBMIT | p.RESP))
            assert submit.status == 0 and submit.msg_id != 0
        sock.sendall(pycmpp_request.TerminateRequestInstance().create())
        _until(sock, p.TERMINATE | p.RESP)
        sock.close()
        assert len(parts) >= 2
