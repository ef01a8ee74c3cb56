"""CMPP access for customers (issue 18, point 3): ``cmppy`` from PyPI (a CMPP 3.0 client no one here wrote) as
the customer's software, against a real ``smsguard serve`` with the ``cmpp`` role (and api, release, gateway on
the loopback channel, relay), on SQLite and PostgreSQL.

cmppy does CONNECT and SUBMIT and parses their answers; it has no DELIVER parser, so the status report that
comes back over its bind is read from its socket and decoded byte by byte (access_support.py, CMPP 3.0 DELIVER
layout)."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from access_support import bind_cmpp as _bind
from access_support import read_mo, read_report, submit
from cmppy import Cmppy
from serve_support import free_port, start, stop, wait_ready
from sqlalchemy import text

SIGN = "示例商城"


@dataclasses.dataclass
class Live:
    cmpp_port: int
    proc: subprocess.Popen
    log: Path


@dataclasses.dataclass
class Account:
    tenant: str
    tenant_id: int
    sp_id: str
    secret: str


@pytest.fixture(scope="module")
def live(backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from smsguard.storage import migrate

    migrate(backend.db)
    log = tmp_path_factory.mktemp("cmpp-serve") / "serve.log"
    port, cmpp_port = free_port(), free_port()
    env = backend.env(SMSGUARD_NODE=f"cmpp-{backend.name}", SMSGUARD_CMPP_LISTEN=f"127.0.0.1:{cmpp_port}")
    proc = start(["serve", "--port", str(port)], env, log)
    try:
        wait_ready(port, proc, log, timeout=90)
        _wait_listening(cmpp_port, proc, log)
        yield Live(cmpp_port, proc, log)
    finally:
        stop(proc)


def _wait_listening(port: int, proc: subprocess.Popen, log: Path) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the cmpp role never listened:\n" + log.read_text())


@pytest.fixture(scope="module")
def account(backend, live: Live) -> Account:
    from smsguard.runtime import Runtime
    from smsguard.storage import create_tenant
    from smsguard.vendors import create_account

    tenant = create_tenant(backend.db, f"cmpp-{uuid.uuid4().hex[:10]}", rate_limit=1_000_000)
    acct, secret = create_account(
        backend.db, Runtime(backend.settings()).vault, tenant.name, sp_id=uuid.uuid4().hex[:6], label="test"
    )
    import time

    time.sleep(10.5)  # the role reloads its accounts every 10 s
    return Account(tenant.name, tenant.id, acct.sp_id, secret)


def bind(live: Live, sp_id: str, secret: str) -> Cmppy | None:
    return _bind(live.cmpp_port, sp_id, secret)


def test_bind_with_the_wrong_secret_is_refused(live: Live, account: Account) -> None:
    assert bind(live, account.sp_id, account.secret + "x") is None
    assert bind(live, "zzzzzz", account.secret) is None


def test_clean_message_is_accepted_then_reported_delivered(backend, live: Live, account: Account) -> None:
    client = bind(live, account.sp_id, account.secret)
    assert client is not None
    msg_id, result = submit(client, account.sp_id, "13800138001", f"【{SIGN}】您的快递已到，请及时取件。")
    assert result == 0 and msg_id
    with backend.db.connect() as conn:
        [(batch_id, seq)] = conn.execute(
            text("SELECT batch_id, seq FROM cmpp_messages WHERE msg_id = :m"), {"m": str(msg_id)}
        ).all()
        [(payload,)] = conn.execute(
            text("SELECT payload FROM audit_events WHERE event_type = 'cmpp.submit' AND tenant_id = :t"),
            {"t": account.tenant_id},
        ).all()
    assert seq == 1 and json.loads(payload)["batch_id"] == batch_id
    reported, stat, phone = read_report(client)  # after release, loopback delivery and the relay
    assert (reported, stat, phone) == (msg_id, "DELIVRD", "13800138001")
    client._terminate()


def test_blocked_content_is_result_20_and_an_opted_out_number_21(backend, live: Live, account: Account) -> None:
    from smsguard import batches
    from smsguard.runtime import Runtime

    client = bind(live, account.sp_id, account.secret)
    assert client is not None
    assert submit(client, account.sp_id, "13800138002", f"【{SIGN}】澳门赌场开业，线上博彩")[1] == 20
    ctx = Runtime(backend.settings()).batch_context()
    batches.opt_out(
        ctx, phone=batches.parse_phone("13800138003"), tenant_id=account.tenant_id, source="test", actor="test"
    )
    assert submit(client, account.sp_id, "13800138003", f"【{SIGN}】您的快递已到，请及时取件。")[1] == 21
    client._terminate()


def test_key_cmpp_create_list_revoke_from_the_command_line(backend, migrated_db) -> None:
    from serve_support import SMSGUARD

    from smsguard.storage import create_tenant

    tenant = create_tenant(backend.db, f"cmppcli-{uuid.uuid4().hex[:8]}")
    sp_id = uuid.uuid4().hex[:6]

    def cli(*args: str) -> str:
        out = subprocess.run(
            [*SMSGUARD, "key", "cmpp", *args], env=backend.env(), capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert f"Source_Addr: {sp_id}" in cli("create", "--tenant", tenant.name, "--sp-id", sp_id, "--rate", "50")
    assert f"{sp_id}\tconnections=2\twindow=16\trate=50/s\tlive" in cli("list", "--tenant", tenant.name)
    cli("revoke", sp_id)
    assert "revoked" in cli("list", "--tenant", tenant.name)


def test_a_handsets_reply_comes_back_over_the_bind(backend, live: Live, account: Account) -> None:
    from smsguard import batches
    from smsguard.runtime import Runtime

    client = bind(live, account.sp_id, account.secret)
    assert client is not None
    ctx = Runtime(backend.settings()).batch_context()
    batches.handle_mo(
        ctx,
        phone_raw="13800138011",
        text="收到，谢谢",
        tenant_id=account.tenant_id,
        signature=SIGN,
        gateway="test",
        actor="test",
    )
    assert read_mo(client) == ("13800138011", "收到，谢谢")
    client._terminate()


def test_each_part_of_a_long_message_gets_its_status_report(live: Live, account: Account) -> None:
    """Our own CMPP 3.0 client here (cmppy cannot send a UDH): it splits the text into UDH parts, and collects the
    status reports, one per part's Msg_Id."""
    import asyncio

    from smsguard.sending import CmppGateway, OutboundMessage, Receipt

    class Events:
        def __init__(self) -> None:
            self.receipts: list[Receipt] = []

        async def on_receipt(self, receipt: Receipt) -> None:
            self.receipts.append(receipt)

        async def on_inbound(self, message: object) -> None:
            pass

    async def go() -> tuple[tuple[str, ...], list[Receipt]]:
        events = Events()
        gw = CmppGateway("customer", "127.0.0.1", live.cmpp_port, account.sp_id, account.secret, active_test_interval=0)
        await gw.start(events)  # type: ignore[arg-type]
        long_text = f"【{SIGN}】" + "您的快递已到达驿站，请凭取件码及时取件。" * 8  # a notification, not an advert
        sent = await gw.submit(OutboundMessage("long-1", "13800138012", long_text))
        for _ in range(1800):  # a hang detector: release, loopback delivery and the relay come first
            if len(events.receipts) >= len(sent.gateway_ids):
                break
            await asyncio.sleep(0.05)
        await gw.close()
        return sent.gateway_ids, events.receipts

    ids, receipts = asyncio.run(go())
    assert len(ids) >= 3 and sorted(r.gateway_id for r in receipts) == sorted(ids)
    assert {r.status for r in receipts} == {"delivered"}
