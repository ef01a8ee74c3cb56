"""SMPP access for customers end to end (issue 18, point 3): a real ``smsguard serve`` with the ``smpp`` role (and
api, release, gateway on the loopback channel, relay) on SQLite and PostgreSQL; the customer is npm's ``smpp``
package (tests/sending/smpp_peer/customer.js: an ESME no one here wrote) and, for a long message, PyPI's
``smpplib``. Receipts come back over the bind as deliver_sm with receipted_message_id = submit_sm_resp's id (one
per part of a long message), are kept while the customer is away, and a handset's MO follows them."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from access_support import NpmCustomer
from serve_support import free_port, start, stop, wait_ready
from sqlalchemy import text

SIGN = "示例商城"


@dataclasses.dataclass
class Live:
    smpp_port: int
    proc: subprocess.Popen
    log: Path
    tenant_id: int
    sp_id: str
    secret: str


@pytest.fixture(scope="module")
def live(backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from smsguard.runtime import Runtime
    from smsguard.storage import create_tenant, migrate
    from smsguard.vendors import create_account

    migrate(backend.db)
    tenant = create_tenant(backend.db, f"smpp-{uuid.uuid4().hex[:10]}", rate_limit=1_000_000)
    acct, secret = create_account(
        backend.db,
        Runtime(backend.settings()).vault,
        tenant.name,
        sp_id=uuid.uuid4().hex[:6],
        secret_length=8,
        label="test",
    )
    log = tmp_path_factory.mktemp("smpp-serve") / "serve.log"
    port, smpp_port = free_port(), free_port()
    env = backend.env(SMSGUARD_NODE=f"smpp-{backend.name}", SMSGUARD_SMPP_LISTEN=f"127.0.0.1:{smpp_port}")
    proc = start(["serve", "--port", str(port)], env, log)
    try:
        wait_ready(port, proc, log, timeout=90)
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", smpp_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the smpp role never listened:\n" + log.read_text()
                time.sleep(0.2)
        yield Live(smpp_port, proc, log, tenant.id, acct.sp_id, secret)
    finally:
        stop(proc)


def customer_of(live: Live, password: str | None = None) -> NpmCustomer:
    return NpmCustomer(live.smpp_port, live.sp_id, live.secret if password is None else password)


def test_a_wrong_password_is_refused(live: Live) -> None:
    customer = customer_of(live, password="wrongpw")
    assert customer.next("bind")["status"] == 0x0E  # ESME_RINVPASWD
    customer.proc.wait(timeout=10)


def test_submit_is_screened_and_its_receipt_comes_back_over_the_bind(live: Live) -> None:
    customer = customer_of(live)
    assert customer.next("bind")["status"] == 0
    customer.send(op="submit", i=1, to="13800138101", text=f"【{SIGN}】您的快递已到，请及时取件。")
    customer.send(op="submit", i=2, to="13800138102", text=f"【{SIGN}】澳门赌场开业，线上博彩")
    ok = customer.next("resp", i=1)
    assert ok["status"] == 0 and ok["message_id"]
    assert customer.next("resp", i=2)["status"] == 0x400  # blocked by screening (documented)
    receipt = customer.next("deliver", esm_class=4)  # after release, loopback delivery and the relay
    assert receipt["receipted_message_id"] == ok["message_id"] and receipt["message_state"] == 2
    assert f"id:{ok['message_id']} " in receipt["text"] and "stat:DELIVRD" in receipt["text"]
    assert receipt["source"] == "13800138101"  # a receipt comes from the handset (§4.6.1)
    customer.close()


def test_receipts_and_mo_are_kept_until_the_customer_binds_again(backend, live: Live) -> None:
    from smsguard import batches
    from smsguard.runtime import Runtime

    away = customer_of(live)
    assert away.next("bind")["status"] == 0
    away.send(op="submit", i=1, to="13800138201", text=f"【{SIGN}】您的订单已发货。")
    message_id = away.next("resp", i=1)["message_id"]
    away.close()  # gone before the receipt exists
    deadline = time.monotonic() + 90
    while True:  # delivered while nobody is bound
        with backend.db.connect() as conn:
            status = conn.execute(
                text(
                    "SELECT r.status FROM cmpp_messages m JOIN recipients r ON r.batch_id = "
                    "m.batch_id AND r.seq = m.seq WHERE m.msg_id = :m"
                ),
                {"m": message_id},
            ).scalar()
        if status == "delivered":
            break
        assert time.monotonic() < deadline, f"never delivered (status {status})"
        time.sleep(0.2)
    ctx = Runtime(backend.settings()).batch_context()
    batches.handle_mo(
        ctx,
        phone_raw="13800138201",
        text="收到，谢谢",
        tenant_id=live.tenant_id,
        signature=SIGN,
        gateway="test",
        actor="test",
    )
    back = customer_of(live)
    assert back.next("bind")["status"] == 0
    receipt = back.next("deliver", esm_class=4)
    assert receipt["receipted_message_id"] == message_id and "stat:DELIVRD" in receipt["text"]
    mo = back.next("deliver", esm_class=0)
    assert mo["source"] == "13800138201"
    deadline = time.monotonic() + 30  # both are marked done right after the write to the bind
    while True:
        with backend.db.connect() as conn:
            reported = conn.execute(
                text("SELECT reported_at FROM cmpp_messages WHERE msg_id = :m"), {"m": message_id}
            ).scalar()
            mo_done = conn.execute(
                text(
                    "SELECT count(*) FROM access_mo a JOIN inbound_messages i ON i.id = "
                    "a.inbound_id WHERE i.tenant_id = :t AND a.protocol = 'smpp'"
                ),
                {"t": live.tenant_id},
            ).scalar()
        if (reported is not None and mo_done == 1) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert reported is not None and mo_done == 1
    back.close()


def test_each_part_of_a_long_message_gets_its_receipt(live: Live) -> None:
    import smpplib.client
    import smpplib.consts as c
    import smpplib.gsm

    client = smpplib.client.Client("127.0.0.1", live.smpp_port, timeout=90, allow_unknown_opt_params=True)
    resps: dict[int, str] = {}
    receipts: list[str] = []
    client.set_message_sent_handler(lambda pdu: resps.__setitem__(pdu.sequence, pdu.message_id.decode()))
    client.set_message_received_handler(
        lambda pdu: receipts.append(pdu.receipted_message_id.decode()) if pdu.esm_class & 4 else None
    )
    client.connect()
    client.bind_transceiver(system_id=live.sp_id, password=live.secret)
    long_text = f"【{SIGN}】" + "双十一大促全场五折起，详情请见会员中心。" * 8
    parts, coding, esm = smpplib.gsm.make_parts(long_text, encoding=c.SMPP_ENCODING_ISO10646)
    seqs = [
        client.send_message(
            source_addr="10690001",
            destination_addr="13800138301",
            short_message=p,
            data_coding=coding,
            esm_class=esm,
            registered_delivery=1,
        ).sequence
        for p in parts
    ]
    while len(receipts) < len(seqs):
        client.read_once()
    assert len(seqs) >= 3 and sorted(receipts) == sorted(resps[s] for s in seqs)
    client.unbind()
    client.disconnect()


def test_data_sm_gets_its_receipt_and_query_sm_answers_from_our_records(live: Live) -> None:
    customer = customer_of(live)
    assert customer.next("bind")["status"] == 0
    customer.send(op="data", i=1, to="13800138401", text=f"【{SIGN}】您的验证码是 4321，五分钟内有效。")
    ok = customer.next("resp", i=1)
    assert ok["status"] == 0 and ok["message_id"]
    receipt = customer.next("deliver", esm_class=4, receipted_message_id=ok["message_id"])
    assert receipt["message_state"] == 2  # screened, released, delivered like a submit_sm
    customer.send(op="query", i=2, message_id=ok["message_id"])
    answer = customer.next("query", i=2)
    assert (answer["status"], answer["message_state"]) == (0, 2) and answer["final_date"]
    customer.send(op="cancel", i=3, message_id=ok["message_id"])  # delivered: too late to take back
    assert customer.next("cancel", i=3)["status"] == 0x11  # ESME_RCANCELFAIL
    customer.close()
