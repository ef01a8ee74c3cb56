"""The SMPP 3.4 server for customers (issue 18, point 3), in process, against ``smpplib`` (PyPI: an SMPP client
no one here wrote) as the customer's software: binds as §4.1 says (password checked, connection limit, bind
types), submit_sm screened through the grouped handler into real batches (0, the documented 0x400 / 0x401),
throughput, long messages joined before screening, receipts and MO as deliver_sm, kept until a receiving bind."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest
import smpplib.client
import smpplib.consts as c
import smpplib.exceptions
import smpplib.gsm
from access_support import Running
from sqlalchemy import text


@pytest.fixture
def account(access_ctx):
    from smsguard.storage import create_tenant
    from smsguard.vendors import create_account

    tenant = create_tenant(access_ctx.db, f"smpp-{uuid.uuid4().hex[:8]}", rate_limit=10**9)
    acct, _ = create_account(
        access_ctx.db, access_ctx.vault, tenant.name, sp_id=uuid.uuid4().hex[:6], window=16, rate=1000, secret_length=8
    )
    return acct, tenant.id


@pytest.fixture
def live(access_ctx, account) -> Iterator[Running]:
    from smsguard.sending import SmppServer
    from smsguard.vendors import GroupedSubmitHandler

    server = SmppServer([account[0]], GroupedSubmitHandler(access_ctx), port=0)
    running = Running(server)
    yield running
    running.close()


class Customer:
    """smpplib's client; every submit_sm_resp and deliver_sm recorded (smpplib raises on error statuses by
    default: here they are answers to look at)."""

    def __init__(self, port: int) -> None:
        self.client = smpplib.client.Client("127.0.0.1", port, timeout=30, allow_unknown_opt_params=True)
        self.resps: dict[int, tuple[int, str]] = {}
        self.delivered: list = []
        self.client.set_message_sent_handler(self._resp)
        self.client.set_error_pdu_handler(self._resp)
        self.client.set_message_received_handler(lambda pdu: self.delivered.append(pdu))
        self.client.connect()

    def _resp(self, pdu) -> None:
        mid = pdu.message_id
        self.resps[pdu.sequence] = (pdu.status, mid.decode() if isinstance(mid, bytes) else (mid or ""))

    def bind(self, system_id: str, password: str, kind: str = "transceiver") -> int:
        try:
            getattr(self.client, f"bind_{kind}")(system_id=system_id, password=password)
        except smpplib.exceptions.PDUError as e:
            return e.args[1]
        return 0

    def submit(self, to: str, content: str) -> list[int]:
        parts, coding, esm = smpplib.gsm.make_parts(content, encoding=c.SMPP_ENCODING_ISO10646)
        seqs = []
        for part in parts:
            pdu = self.client.send_message(
                source_addr="10690001",
                destination_addr=to,
                short_message=part,
                data_coding=coding,
                esm_class=esm,
                registered_delivery=1,
            )
            seqs.append(pdu.sequence)
        return seqs

    def answers(self, seqs: list[int]) -> list[tuple[int, str]]:
        while not all(s in self.resps for s in seqs):
            self.client.read_once()
        return [self.resps[s] for s in seqs]

    def wait_delivered(self, n: int) -> list:
        while len(self.delivered) < n:
            self.client.read_once()
        return self.delivered

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.unbind()
        with contextlib.suppress(Exception):
            self.client.disconnect()


def test_bind_checks_system_id_password_and_the_connection_limit(live: Running, account) -> None:
    acct = account[0]
    assert len(acct.secret) == 8  # §4.1: password is at most 8 octets (a 9-octet C-Octet String)
    assert Customer(live.port).bind(acct.sp_id, acct.secret[:-1] + "x") == c.SMPP_ESME_RINVPASWD
    assert Customer(live.port).bind("nosuch", acct.secret) == c.SMPP_ESME_RINVSYSID
    held = [Customer(live.port) for _ in range(2)]  # the account's limit: 2
    assert [
        h.bind(acct.sp_id, acct.secret, kind) for h, kind in zip(held, ("transmitter", "receiver"), strict=True)
    ] == [0, 0]
    assert Customer(live.port).bind(acct.sp_id, acct.secret) == c.SMPP_ESME_RBINDFAIL
    receiver = held[1]
    receiver.client.state = c.SMPP_CLIENT_STATE_BOUND_TRX  # smpplib refuses it itself: the server must too
    seqs = receiver.submit("13800000001", "【示例商城】您好")  # a receiver bind cannot submit
    assert receiver.answers(seqs) == [(c.SMPP_ESME_RINVBNDSTS, "")]
    for h in held:
        h.close()


def test_submits_are_screened_and_answered_with_the_documented_statuses(access_ctx, live: Running, account) -> None:
    from smsguard import batches
    from smsguard.sending import _smpp_server as s

    acct, tenant_id = account
    batches.opt_out(
        access_ctx, phone=batches.parse_phone("13800000003"), tenant_id=tenant_id, source="test", actor="test"
    )
    customer = Customer(live.port)
    assert customer.bind(acct.sp_id, acct.secret) == 0
    clean = customer.submit("13800000001", "【示例商城】您的快递已到，请及时取件。")
    blocked = customer.submit("13800000002", "【示例商城】澳门赌场开业")
    opted = customer.submit("13800000003", "【示例商城】您的快递已到，请及时取件。")
    [(status, message_id)] = customer.answers(clean)
    assert status == 0 and message_id.isdigit()
    assert customer.answers(blocked) == [(s.STATUS_BLOCKED, "")] and s.STATUS_BLOCKED == 0x400
    assert customer.answers(opted) == [(s.STATUS_OPTED_OUT, "")] and s.STATUS_OPTED_OUT == 0x401
    with access_ctx.db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.msg_id, m.protocol, r.status FROM cmpp_messages m JOIN recipients r "
                "ON r.batch_id = m.batch_id AND r.seq = m.seq WHERE m.tenant_id = :t"
            ),
            {"t": tenant_id},
        ).all()
    assert (message_id, "smpp", "queued") in [tuple(r) for r in rows]
    customer.close()


def test_throughput_over_the_account_rate_is_throttled(access_ctx, account) -> None:
    import dataclasses

    from smsguard.sending import SmppServer
    from smsguard.vendors import GroupedSubmitHandler

    acct = dataclasses.replace(account[0], rate=1.0)  # one submit a second, a burst of one
    live = Running(SmppServer([acct], GroupedSubmitHandler(access_ctx), port=0))
    try:
        customer = Customer(live.port)
        assert customer.bind(acct.sp_id, acct.secret) == 0
        seqs = [customer.submit(f"138000001{i:02d}", f"【示例商城】您的快递{i}已到。")[0] for i in range(10)]
        statuses = [st for st, _ in customer.answers(seqs)]
        assert statuses.count(c.SMPP_ESME_RTHROTTLED) >= 5 and statuses[0] == 0
        customer.close()
    finally:
        live.close()


def test_long_message_is_screened_whole_and_each_part_reported(access_ctx, live: Running, account) -> None:
    acct, tenant_id = account
    customer = Customer(live.port)
    assert customer.bind(acct.sp_id, acct.secret) == 0
    long_text = "【示例商城】" + "双十一大促全场五折起，详情请见会员中心。" * 8
    seqs = customer.submit("13800000011", long_text)
    answers = customer.answers(seqs)
    assert len(seqs) >= 3 and all(st == 0 for st, _ in answers)
    ids = [mid for _, mid in answers]
    deadline = time.monotonic() + 60  # each part is answered on arrival; the whole is screened after the last
    while True:
        with access_ctx.db.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT m.msg_id, m.part_ids, c.text FROM cmpp_messages m JOIN recipients r "
                    "ON r.batch_id = m.batch_id AND r.seq = m.seq JOIN batch_contents c ON c.batch_id = r.batch_id "
                    "AND c.content_id = r.content_id WHERE m.tenant_id = :t"
                ),
                {"t": tenant_id},
            ).all()
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [(msg_id, part_ids, content)] = rows
    assert content == long_text and [msg_id, *part_ids.split()] == ids  # one message, joined in order
    customer.close()


def test_receipts_and_mo_wait_for_a_receiving_bind(live: Running, account) -> None:
    acct = account[0]
    live.call(live.server.report, acct.sp_id, 4242, "13800000021", "DELIVRD", "10690001")
    live.call(live.server.mo, acct.sp_id, "13800000021", "10690001", "TD 谢谢")
    transmitter = Customer(live.port)  # a transmitter bind gets no deliver_sm
    assert transmitter.bind(acct.sp_id, acct.secret, "transmitter") == 0
    receiver = Customer(live.port)
    assert receiver.bind(acct.sp_id, acct.secret, "receiver") == 0
    receipt, mo = receiver.wait_delivered(2)
    assert receipt.esm_class & 0x04 and receipt.receipted_message_id in (b"4242", "4242")
    assert b"id:4242 " in receipt.short_message and b"stat:DELIVRD" in receipt.short_message
    assert receipt.message_state == 2  # §5.3.2.35 DELIVERED
    assert not mo.esm_class & 0x04 and mo.short_message.decode("utf-16-be") == "TD 谢谢"
    assert mo.source_addr in (b"13800000021", "13800000021")
    assert transmitter.delivered == []
    transmitter.close()
    receiver.close()


def test_the_window_stops_reading_while_it_is_full() -> None:
    """A handler that holds every submit: with a window of 4, the fifth submit_sm is not even read until one is
    answered; then the rest go through."""
    from smsguard.sending import CmppAccount, SmppServer

    class Holding:
        def __init__(self) -> None:
            self.seen = 0
            self.release: asyncio.Event | None = None

        async def on_submit(self, submit) -> str:
            self.seen += 1
            if self.release is None:
                self.release = asyncio.Event()
            await self.release.wait()
            return "accepted"

    handler = Holding()
    acct = CmppAccount("win001", "pw123456", "t", max_connections=1, window=4, rate=1000)
    live = Running(SmppServer([acct], handler, port=0))
    try:
        customer = Customer(live.port)
        assert customer.bind(acct.sp_id, acct.secret) == 0
        seqs = [customer.submit(f"138000002{i:02d}", f"【示例商城】第{i}条")[0] for i in range(10)]
        deadline = time.monotonic() + 30
        while handler.seen < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # had the server kept reading, the other six would be in the handler by now
        assert handler.seen == 4 and customer.resps == {}
        live.call(lambda: handler.release.set())  # type: ignore[union-attr]
        assert [st for st, _ in customer.answers(seqs)] == [0] * 10 and handler.seen == 10
        customer.close()
    finally:
        live.close()
