"""End to end, on both backends: ``POST /v1/messages`` and ``POST /v1/verify`` in the app, the real sending side
in another process (``smsguard console loopback``: the release worker, a gateway worker on the loopback channel
and the delivery-report relay), and ``GET /v1/messages/{id}`` reaching ``delivered`` (or ``failed`` with the
carrier's status for a number the loopback peer does not deliver to)."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from litestar.testing import TestClient
from sqlalchemy import MetaData, select

from smsguard.batches._tables import batches
from smsguard.engine import PROJECT_ROOT
from smsguard.messages import _verify
from smsguard.messages._tables import messages as messages_t


@pytest.fixture
def sending(backend, app: TestClient, tmp_path) -> Iterator[subprocess.Popen[str]]:
    log = tmp_path / "loopback.log"
    proc = subprocess.Popen([sys.executable, "-m", "smsguard", "console", "loopback"], env=backend.env(),
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("READY loopback"), (line, log.read_text())
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _until(app: TestClient, headers: dict[str, str], message_id: int, states: set[str], proc) -> dict:
    deadline = time.monotonic() + 180  # a liveness bound on a loaded host, not a performance assertion
    while True:
        m = app.get(f"/v1/messages/{message_id}", headers=headers).json()
        if m["state"] in states:
            return m
        assert proc.poll() is None, "the sending process died"
        assert time.monotonic() < deadline, m
        time.sleep(0.2)


def test_a_single_message_and_a_code_are_delivered(app: TestClient, tenant, ctx, sending, monkeypatch) -> None:
    r = app.post("/v1/messages", headers=tenant.h, json={"to": "13712345601", "text": "【示例商城】您的订单已发货。"})
    assert r.status_code == 201 and r.json()["state"] == "scheduled", r.text
    m = _until(app, tenant.h, r.json()["id"], {"delivered", "failed"}, sending)
    assert m["state"] == "delivered" and m["to"] == "137****5601", m
    assert m["delivery"]["gateway"] == "loopback" and m["delivery"]["carrier_status"] == "DELIVRD"
    assert m["delivery"]["final_at"] and float(m["cost"]) > 0
    listed = app.get("/v1/messages", headers=tenant.h, params={"state": "delivered"}).json()["messages"]
    assert [x["id"] for x in listed] == [m["id"]]
    # the loopback peer reports numbers ending 9003 undelivered: the carrier's status is shown
    r = app.post("/v1/messages", headers=tenant.h, json={"to": "13712349003", "text": "【示例商城】您的订单已发货。"})
    failed = _until(app, tenant.h, r.json()["id"], {"delivered", "failed", "unknown", "expired"}, sending)
    assert failed["state"] == "failed" and failed["delivery"]["carrier_status"], failed
    # a verification code: sent through the same path, delivered, then checked
    code = "961582"  # the platform's choice made known to the test (the handset's view)
    digits = iter(code)
    monkeypatch.setattr(_verify, "secrets", SimpleNamespace(choice=lambda _: next(digits),
                                                            token_hex=secrets.token_hex))
    assert app.put("/v1/verify/settings", headers=tenant.h, json={"length": 6}).status_code == 200
    v = app.post("/v1/verify", headers=tenant.h, json={"to": "13712345602", "signature": "示例银行"}).json()
    delivered = _until(app, tenant.h, v["message_id"], {"delivered", "failed"}, sending)
    assert delivered["state"] == "delivered" and delivered["kind"] == "verification"
    # handed over: no row of any table holds the code in plain text any more (the text keeps ●●●●●●)
    assert _rows_holding(ctx.db, code) == []
    with ctx.db.connect() as conn:
        text = conn.execute(select(batches.c.content).join(messages_t, messages_t.c.batch_id == batches.c.id)
                            .where(messages_t.c.id == v["message_id"])).scalar_one()
    assert "验证码是●●●●●●，" in text, text
    wrong = app.post("/v1/verify/check", headers=tenant.h, json={"to": "13712345602", "code": "●●●●●●"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "verify.mismatch", wrong.text
    ok = app.post("/v1/verify/check", headers=tenant.h, json={"to": "13712345602", "code": code})
    assert ok.status_code == 200 and ok.json()["status"] == "verified", ok.text


def _rows_holding(db, secret: str) -> list[str]:
    """``table.column`` of every SQL value (text, or bytes read as UTF-8) that contains ``secret`` as a number of
    its own: not inside a longer run of letters and digits, where a digest or ciphertext (an audit event's hex
    MAC, a sealed blob) spells any 6 digits by chance — the session database holds thousands of them, and one
    run in a few dozen found the code inside a MAC."""
    standalone = re.compile(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])")
    found = []
    meta = MetaData()
    meta.reflect(db)
    with db.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    if isinstance(value, (bytes, memoryview)):
                        value = bytes(value).decode("utf-8", "replace")
                    if isinstance(value, str) and standalone.search(value):
                        found.append(f"{table.name}.{column}")
    return found
