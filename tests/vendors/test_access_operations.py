"""The customer-facing servers beyond submit (issue 18, point 3), in process, on SQLite and PostgreSQL, with clients
no one here wrote: SMPP data_sm screened and sent like submit_sm, query_sm answered from our records, cancel_sm
for a message still queued here (npm's ``smpp``, tests/sending/smpp_peer/customer.js); and the keep-alive: an idle
bind is probed with enquire_link / CMPP_ACTIVE_TEST and one that does not answer is dropped (npm ``smpp``, PyPI
``cmppy``). No release worker runs here, so an accepted message stays ``queued``: what cancel_sm can still take."""

from __future__ import annotations

import asyncio
import struct
import time
import uuid
from collections.abc import Iterator

import pytest
from access_support import ACTIVE_TEST, NpmCustomer, Running, bind_cmpp, read_pdu, submit
from sqlalchemy import text

CLEAN = "【示例商城】您的快递已到，请及时取件。"


@pytest.fixture
def account(access_ctx):
    from smsguard.storage import create_tenant
    from smsguard.vendors import create_account

    tenant = create_tenant(access_ctx.db, f"ops-{uuid.uuid4().hex[:8]}", rate_limit=10**9)
    acct, _ = create_account(
        access_ctx.db, access_ctx.vault, tenant.name, sp_id=uuid.uuid4().hex[:6], rate=1000, secret_length=8
    )
    return acct, tenant.id


@pytest.fixture
def smpp(access_ctx, account) -> Iterator[Running]:
    from smsguard.sending import SmppServer
    from smsguard.vendors import GroupedSubmitHandler

    running = Running(SmppServer([account[0]], GroupedSubmitHandler(access_ctx), port=0))
    yield running
    running.close()


def customer(running: Running, account, *extra: str) -> NpmCustomer:
    c = NpmCustomer(running.port, account[0].sp_id, account[0].secret, *extra)
    assert c.next("bind")["status"] == 0
    return c


def test_data_sm_is_screened_and_sent_like_submit_sm(access_ctx, smpp: Running, account) -> None:
    from smsguard.sending import _smpp_server as s

    c = customer(smpp, account)
    c.send(op="data", i=1, to="13800000101", text=CLEAN)
    c.send(op="data", i=2, to="13800000102", text="【示例商城】澳门赌场开业")
    ok = c.next("resp", i=1)
    assert ok["status"] == 0 and ok["message_id"].isdigit()
    assert c.next("resp", i=2)["status"] == s.STATUS_BLOCKED
    with access_ctx.db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.protocol, r.status, c.text FROM cmpp_messages m JOIN recipients r ON r.batch_id = m.batch_id "
                "AND r.seq = m.seq JOIN batch_contents c ON c.batch_id = r.batch_id AND c.content_id = r.content_id "
                "WHERE m.msg_id = :m AND m.tenant_id = :t"
            ),
            {"m": ok["message_id"], "t": account[1]},
        ).all()
    assert [tuple(r) for r in rows] == [("smpp", "queued", CLEAN)]  # one batch row, as a submit_sm makes
    c.close()


def test_query_sm_answers_from_our_records_and_cancel_sm_takes_back_a_queued_message(
    access_ctx, smpp: Running, account
) -> None:
    from smsguard.sending import _smpp_server as s

    c = customer(smpp, account)
    c.send(op="submit", i=1, to="13800000111", text=CLEAN)
    message_id = c.next("resp", i=1)["message_id"]
    c.send(op="query", i=2, message_id=message_id)
    queued = c.next("query", i=2)
    assert (queued["status"], queued["message_state"], queued["final_date"]) == (0, s.ENROUTE, "")  # not final yet
    c.send(op="cancel", i=3, message_id=message_id)
    assert c.next("cancel", i=3)["status"] == 0
    c.send(op="query", i=4, message_id=message_id)
    cancelled = c.next("query", i=4)
    assert (cancelled["status"], cancelled["message_state"]) == (0, s.DELETED) and cancelled["final_date"]
    c.send(op="cancel", i=5, message_id=message_id)  # final now: nothing left to cancel
    assert c.next("cancel", i=5)["status"] == s.ESME_RCANCELFAIL == 0x11
    c.send(op="cancel", i=6, message_id="424242")  # not one of this account's messages
    assert c.next("cancel", i=6)["status"] == s.ESME_RINVMSGID == 0x0C
    c.send(op="query", i=7, message_id="424242")
    assert c.next("query", i=7)["status"] == s.ESME_RQUERYFAIL == 0x67
    with access_ctx.db.connect() as conn:
        status, reported = conn.execute(
            text(
                "SELECT r.status, m.reported_at FROM cmpp_messages m JOIN recipients r ON r.batch_id = m.batch_id "
                "AND r.seq = m.seq WHERE m.msg_id = :m AND m.tenant_id = :t"
            ),
            {"m": message_id, "t": account[1]},
        ).one()
        events = conn.execute(
            text("SELECT count(*) FROM audit_events WHERE event_type = 'cmpp.cancel' AND tenant_id = :t"),
            {"t": account[1]},
        ).scalar()
    assert status == "cancelled" and reported is not None and events == 1  # no receipt follows a cancel
    c.close()


def test_an_idle_smpp_bind_is_probed_and_one_that_does_not_answer_is_dropped(access_ctx, account) -> None:
    from smsguard.sending import SmppServer
    from smsguard.vendors import GroupedSubmitHandler

    running = Running(
        SmppServer([account[0]], GroupedSubmitHandler(access_ctx), port=0, enquire_link_every=0.3,
                   enquire_link_timeout=0.6)
    )
    try:
        alive = customer(running, account)
        hung = customer(running, account, "--ignore-enquire-link")
        hung.next("enquire_link", timeout=30)
        hung.next("closed", timeout=30)  # dropped: its connection slot is free again
        for _ in range(3):  # probed again each time it is idle, and answered: still bound
            alive.next("enquire_link", timeout=30)
        assert running.sessions(account[0].sp_id) == 1
        again = customer(running, account)  # the limit is 2: the dropped bind no longer counts
        alive.send(op="submit", i=1, to="13800000121", text=CLEAN)
        assert alive.next("resp", i=1)["status"] == 0
        alive.close()
        again.close()
    finally:
        running.close()


def test_an_idle_cmpp_connection_gets_active_tests_and_a_silent_one_is_dropped(access_ctx, account) -> None:
    from smsguard.sending import CmppServer
    from smsguard.vendors import GroupedSubmitHandler

    acct = account[0]
    running = Running(
        CmppServer([acct], GroupedSubmitHandler(access_ctx), port=0, active_test_every=0.3, active_test_timeout=0.6)
    )
    try:
        client = bind_cmpp(running.port, acct.sp_id, acct.secret)
        assert client is not None
        for _ in range(2):  # answered, so probed again once idle, and kept
            pdu = read_pdu(client)
            command, seq = struct.unpack("!LL", pdu[4:12])
            assert command == ACTIVE_TEST
            client._write(struct.pack("!LLLB", 13, ACTIVE_TEST | 0x80000000, seq, 0))
        msg_id, result = submit(client, acct.sp_id, "13800000131", CLEAN)  # still connected and served
        assert result == 0 and msg_id
        started = time.monotonic()
        while True:  # now silent: the next ACTIVE_TEST goes unanswered and the server hangs up
            pdu = read_pdu(client)
            if pdu == b"":
                break
            assert struct.unpack("!L", pdu[4:8])[0] == ACTIVE_TEST
            assert time.monotonic() - started < 60, "never dropped"  # a hang detector
        assert running.sessions(acct.sp_id) == 0
    finally:
        running.close()


def test_cmpp_cancel_takes_back_a_queued_message(access_ctx, account) -> None:
    """cmppy CONNECTs and SUBMITs; it has no CANCEL, so that PDU is written on its socket as the specification
    lays it out (Msg_Id 8; CANCEL_RESP Success_Id, 4 octets in 3.0)."""
    from smsguard.sending import CmppServer
    from smsguard.vendors import GroupedSubmitHandler

    acct, tenant_id = account
    running = Running(CmppServer([acct], GroupedSubmitHandler(access_ctx), port=0))
    try:
        client = bind_cmpp(running.port, acct.sp_id, acct.secret)
        assert client is not None
        msg_id, result = submit(client, acct.sp_id, "13800000141", CLEAN)
        assert result == 0

        def cancel(target: int, seq: int) -> int:
            client._write(struct.pack("!LLLQ", 20, 0x00000007, seq, target))
            while True:
                pdu = read_pdu(client)
                command, got = struct.unpack("!LL", pdu[4:12])
                if command == 0x80000007 and got == seq:
                    return int.from_bytes(pdu[12:], "big")

        assert cancel(msg_id, 901) == 0  # still queued here: cancelled
        assert cancel(msg_id, 902) == 1  # cancelled already: nothing left to cancel
        assert cancel(424242, 903) == 1  # not one of this account's messages
        with access_ctx.db.connect() as conn:
            status = conn.execute(
                text(
                    "SELECT r.status FROM cmpp_messages m JOIN recipients r ON r.batch_id = m.batch_id "
                    "AND r.seq = m.seq WHERE m.msg_id = :m AND m.tenant_id = :t"
                ),
                {"m": str(msg_id), "t": tenant_id},
            ).scalar_one()
        assert status == "cancelled"
        client._terminate()
    finally:
        running.close()


def test_cmpp_query_answers_the_accounts_counts_for_the_day(access_ctx, account) -> None:
    """CMPP_QUERY written on cmppy's socket as the specification lays it out (Time 8, Query_Type 1, Query_Code 10,
    Reserve 8; the answer's eight counts of 4 octets): three messages taken today, one of them blocked."""
    import datetime as dt

    from smsguard.sending import CmppServer
    from smsguard.vendors import GroupedSubmitHandler

    acct = account[0]
    running = Running(CmppServer([acct], GroupedSubmitHandler(access_ctx), port=0))
    try:
        client = bind_cmpp(running.port, acct.sp_id, acct.secret)
        assert client is not None
        sent = (("13800000151", CLEAN), ("13800000152", CLEAN), ("13800000153", "【示例商城】澳门赌场开业"))
        results = [submit(client, acct.sp_id, phone, content)[1] for phone, content in sent]
        assert results == [0, 0, 20]

        def query(day: str, kind: int = 0) -> tuple[int, ...]:
            client._write(struct.pack("!LLL8sB10s8s", 39, 0x00000006, 77, day.encode(), kind, b"", b""))
            while True:
                pdu = read_pdu(client)
                if struct.unpack("!L", pdu[4:8])[0] == 0x80000006:
                    assert pdu[12:20] == day.encode()
                    return struct.unpack("!8L", pdu[31:63])

        today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")  # the ISMG's day: China time
        # MT_TLMsg 3, MT_Tlusr 3, MT_Scs 0, MT_WT 2 (queued: no release worker here), MT_FL 1 (the blocked one)
        assert query(today) == (3, 3, 0, 2, 1, 0, 0, 0)
        assert query("20000101") == (0,) * 8  # another day
        assert query(today, kind=1) == (0,) * 8  # per Service_Id: not recorded
        client._terminate()
    finally:
        running.close()


def test_a_bind_whose_window_is_full_is_not_dropped_while_we_are_not_reading_it() -> None:
    """With its window full the server stops reading the bind, so an answer to enquire_link could not be seen:
    the bind is kept while a submit is in the handler (one that holds it, as in test_smpp_server's window
    test), and held to the keep-alive again once answered (this client never answers enquire_link)."""
    from smsguard.sending import CmppAccount, SmppServer

    class Holding:
        def __init__(self) -> None:
            self.seen = 0
            self.release: asyncio.Event | None = None

        async def on_submit(self, submit) -> str:
            self.seen += 1
            self.release = self.release or asyncio.Event()
            await self.release.wait()
            return "accepted"

    handler = Holding()
    acct = CmppAccount("busy01", "pw123456", "t", max_connections=1, window=1, rate=1000)
    running = Running(SmppServer([acct], handler, port=0, enquire_link_every=0.2, enquire_link_timeout=0.3))
    try:
        c = NpmCustomer(running.port, acct.sp_id, acct.secret, "--ignore-enquire-link")
        assert c.next("bind")["status"] == 0
        c.send(op="submit", i=1, to="13800000161", text=CLEAN)
        deadline = time.monotonic() + 30
        while handler.seen < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(1.5)  # several keep-alive periods with the window full
        assert running.sessions(acct.sp_id) == 1 and c.proc.poll() is None  # still bound
        running.loop.call_soon_threadsafe(lambda: handler.release.set())  # type: ignore[union-attr]
        assert c.next("resp", i=1)["status"] == 0
        c.next("closed", timeout=30)  # reading again, and it never answers: dropped
    finally:
        running.close()
