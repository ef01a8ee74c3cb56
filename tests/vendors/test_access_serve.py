"""Customer access against a real ``smsguard serve`` running both the ``cmpp`` and ``smpp`` roles (and api, release,
gateway on the loopback channel, relay), on SQLite and PostgreSQL, with clients no one here wrote (PyPI ``smpplib``
and ``cmppy``, npm ``smpp``):

* the REJECTD reports of a refused long message are kept in SQL, not in the server's memory: the server process is
  restarted before the customer binds a receiver, and the reports still arrive, one per part;
* a handset's reply goes to the access account that sent the tenant's last message to that number, over the
  protocol that message came in on; a number no account sent to goes to the tenant's first account."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from access_support import NpmCustomer, _read, bind_cmpp, read_mo, read_report, submit
from cmppy import SubmitReq
from cmppy.response import parse_response
from serve_support import free_port, start, stop, wait_ready
from sqlalchemy import text

SIGN = "示例商城"
REFUSED = f"【{SIGN}】" + "澳门赌场盛大开业，线上博彩注册即送彩金，天天返水。" * 6  # screened whole: blocked


@dataclasses.dataclass
class Serve:
    env: dict[str, str]
    port: int
    cmpp_port: int
    smpp_port: int
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = start(["serve", "--port", str(self.port)], self.env, self.log)
        wait_ready(self.port, self.proc, self.log, timeout=90)
        for port in (self.cmpp_port, self.smpp_port):
            deadline = time.monotonic() + 30
            while True:
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "a role never listened:\n" + self.log.read_text()
                    time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@dataclasses.dataclass
class Tenant:
    id: int
    accounts: list  # CmppAccount: the first made first (the tenant's "first account")
    ids: list[int]


@pytest.fixture(scope="module")
def tenant(backend) -> Tenant:
    from smsguard.runtime import Runtime
    from smsguard.storage import create_tenant, migrate
    from smsguard.vendors import create_account

    migrate(backend.db)
    t = create_tenant(backend.db, f"access-{uuid.uuid4().hex[:10]}", rate_limit=1_000_000)
    vault = Runtime(backend.settings()).vault
    accounts = [
        create_account(backend.db, vault, t.name, sp_id=uuid.uuid4().hex[:6], secret_length=8)[0] for _ in range(2)
    ]
    with backend.db.connect() as conn:
        ids = [
            conn.execute(text("SELECT id FROM cmpp_accounts WHERE sp_id = :s"), {"s": a.sp_id}).scalar_one()
            for a in accounts
        ]
    return Tenant(t.id, accounts, ids)


@pytest.fixture(scope="module")
def serve(backend, tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    port, cmpp_port, smpp_port = free_port(), free_port(), free_port()
    env = backend.env(
        SMSGUARD_NODE=f"access-{backend.name}",
        SMSGUARD_CMPP_LISTEN=f"127.0.0.1:{cmpp_port}",
        SMSGUARD_SMPP_LISTEN=f"127.0.0.1:{smpp_port}",
    )
    running = Serve(dict(env), port, cmpp_port, smpp_port, tmp_path_factory.mktemp("access-serve") / "serve.log")
    running.start()
    yield running
    running.stop()


def smpplib_client(serve: Serve):
    import smpplib.client

    return smpplib.client.Client("127.0.0.1", serve.smpp_port, timeout=90, allow_unknown_opt_params=True)


def cmpp_long_submit(client, sp_id: str, phone: str, content: str, ref: int) -> list[int]:
    """A long message through cmppy: its UDH (05 00 03 ref total n) is three UCS-2 code units ahead of each part's
    text (cmppy encodes the content as UTF-16-BE); each part's SUBMIT_RESP Msg_Id, in order."""
    chunks = [content[i : i + 60] for i in range(0, len(content), 60)]
    ids = []
    for n, chunk in enumerate(chunks, start=1):
        udh = chr(0x0500) + chr(0x0300 | ref) + chr((len(chunks) << 8) | n)
        req = SubmitReq(sp_id, udh + chunk, dest_terminal_id=[phone], registered_delivery=1, tp_udhi=1,
                        pk_total=len(chunks), pk_number=n)
        client._write(req.message)
        while True:
            pdu = _read(client)
            if pdu[4:8] == b"\x80\x00\x00\x04":
                res = parse_response(pdu)
                assert res.result == 0  # each part is answered on arrival; the whole is screened after the last
                ids.append(res.msg_id)
                break
    return ids


def test_a_refused_long_messages_reports_survive_a_restart_before_the_customer_binds(
    backend, serve: Serve, tenant: Tenant
) -> None:
    import smpplib.consts as c
    import smpplib.gsm

    over_smpp, over_cmpp = tenant.accounts
    sender = smpplib_client(serve)  # a transmitter: it gets no deliver_sm, whatever is owed waits
    resps: dict[int, str] = {}
    sender.set_message_sent_handler(lambda pdu: resps.__setitem__(pdu.sequence, pdu.message_id.decode()))
    sender.connect()
    sender.bind_transmitter(system_id=over_smpp.sp_id, password=over_smpp.secret)
    parts, coding, esm = smpplib.gsm.make_parts(REFUSED, encoding=c.SMPP_ENCODING_ISO10646)
    seqs = [
        sender.send_message(source_addr="10690001", destination_addr="13800138501", short_message=p,
                            data_coding=coding, esm_class=esm, registered_delivery=1).sequence
        for p in parts
    ]
    while len(resps) < len(seqs):
        sender.read_once()
    smpp_ids = sorted(resps[s] for s in seqs)
    sender.unbind()
    sender.disconnect()

    cmpp = bind_cmpp(serve.cmpp_port, over_cmpp.sp_id, over_cmpp.secret)
    assert cmpp is not None
    cmpp_ids = cmpp_long_submit(cmpp, over_cmpp.sp_id, "13800138502", REFUSED, ref=77)
    cmpp._terminate()  # gone before the whole is screened (or just after): no bind to take the reports
    assert len(smpp_ids) >= 3 and len(cmpp_ids) >= 3

    deadline = time.monotonic() + 90
    while True:  # owed and kept in SQL, not reported
        with backend.db.connect() as conn:
            owed = conn.execute(
                text(
                    "SELECT protocol, msg_id, stat FROM access_reports WHERE account_id IN (:a, :b) "
                    "AND reported_at IS NULL"
                ),
                {"a": tenant.ids[0], "b": tenant.ids[1]},
            ).all()
        if len(owed) == len(smpp_ids) + len(cmpp_ids):
            break
        assert time.monotonic() < deadline, f"owed so far: {owed}\n" + serve.log.read_text()
        time.sleep(0.2)
    assert sorted((p, m) for p, m, _ in owed) == sorted(
        [("smpp", m) for m in smpp_ids] + [("cmpp", str(m)) for m in cmpp_ids]
    )
    assert {stat for *_, stat in owed} == {"REJECTD"}

    serve.stop()  # the process that refused them is gone; what was owed was only ever in SQL
    serve.start()

    receiver = smpplib_client(serve)
    receipts: list = []
    receiver.set_message_received_handler(lambda pdu: receipts.append(pdu) if pdu.esm_class & 4 else None)
    receiver.connect()
    receiver.bind_receiver(system_id=over_smpp.sp_id, password=over_smpp.secret)
    while len(receipts) < len(smpp_ids):
        receiver.read_once()
    got = sorted(r.receipted_message_id.decode() for r in receipts)
    assert got == smpp_ids and {r.message_state for r in receipts} == {8}  # §5.3.2.35 REJECTED
    assert all(b"stat:REJECTD" in r.short_message for r in receipts)
    receiver.unbind()
    receiver.disconnect()

    cmpp = bind_cmpp(serve.cmpp_port, over_cmpp.sp_id, over_cmpp.secret)
    assert cmpp is not None
    reports = [read_report(cmpp) for _ in cmpp_ids]
    assert sorted(reports) == sorted((m, "REJECTD", "13800138502") for m in cmpp_ids)
    cmpp._terminate()
    deadline = time.monotonic() + 30  # marked reported right after the write to the bind
    while True:
        with backend.db.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM access_reports WHERE account_id IN (:a, :b) AND reported_at IS NULL"),
                {"a": tenant.ids[0], "b": tenant.ids[1]},
            ).scalar()
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == 0


def test_a_reply_goes_to_the_account_that_sent_to_that_number(backend, serve: Serve, tenant: Tenant) -> None:
    from smsguard import batches
    from smsguard.runtime import Runtime

    first, second = tenant.accounts
    npm = NpmCustomer(serve.smpp_port, first.sp_id, first.secret)  # the tenant's first account, over SMPP
    assert npm.next("bind")["status"] == 0
    npm.send(op="submit", i=1, to="13800138601", text=f"【{SIGN}】您的订单已发货。")
    assert npm.next("resp", i=1)["status"] == 0
    cmpp = bind_cmpp(serve.cmpp_port, second.sp_id, second.secret)  # the second account, over CMPP
    assert cmpp is not None
    assert submit(cmpp, second.sp_id, "13800138602", f"【{SIGN}】您的快递已到，请及时取件。")[1] == 0

    ctx = Runtime(backend.settings()).batch_context()
    for phone, reply in (("13800138601", "收到"), ("13800138602", "TD"), ("13800138603", "你好")):
        batches.handle_mo(ctx, phone_raw=phone, text=reply, tenant_id=tenant.id, signature=SIGN, gateway="test",
                          actor="test")
    assert read_mo(cmpp) == ("13800138602", "TD")  # the second account's own number, not the first account's
    for phone in ("13800138601", "13800138603"):  # its own number; one no account sent to: the first account
        assert npm.next("deliver", esm_class=0, source=phone)["source"] == phone
    deadline = time.monotonic() + 30
    while True:
        with backend.db.connect() as conn:
            routed = conn.execute(
                text(
                    "SELECT i.text, a.account_id, a.protocol FROM access_mo a JOIN inbound_messages i "
                    "ON i.id = a.inbound_id WHERE i.tenant_id = :t"
                ),
                {"t": tenant.id},
            ).all()
        if len(routed) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(tuple(r) for r in routed) == sorted(
        [("收到", tenant.ids[0], "smpp"), ("TD", tenant.ids[1], "cmpp"), ("你好", tenant.ids[0], "smpp")]
    )
    cmpp._terminate()
    npm.close()
