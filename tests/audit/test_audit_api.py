"""The API's side of the audit log: verdict and reload events, auditor-only exports and trails, the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from smsguard import audit
from smsguard.audit import AuditEvent, append_many, verify
from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig


@pytest.fixture(scope="module")
def audit_client(backend, tmp_path_factory) -> Iterator[TestClient]:
    from smsguard.api import create_app

    root = tmp_path_factory.mktemp("audit-api")
    shutil.copyfile(PROJECT_ROOT / "policy.yaml", root / "policy.yaml")
    (root / "lex").mkdir()
    (root / "lex" / "gambling.tsv").write_text("赌场\tgambling\thigh\tsubstring\n", "utf-8")
    engine = Engine(EngineConfig(policy_path=root / "policy.yaml", lexicon_dirs=(root / "lex",)))
    with TestClient(create_app(engine, settings=backend.settings())) as c:
        yield c


def _tenant(backend, role: str | None = None) -> tuple[int, str, dict[str, str]]:
    from smsguard.storage import create_key, create_tenant

    t = create_tenant(backend.db, f"au-{uuid.uuid4().hex[:10]}")
    key, _ = create_key(backend.db, t.name, role=role)
    return t.id, t.name, {"Authorization": f"Bearer {key}"}


def test_every_stored_verdict_is_an_event_in_the_same_chain(backend, audit_client) -> None:
    tid, _, headers = _tenant(backend)
    r = audit_client.post("/v1/screen/batch", headers=headers,
                          json={"messages": [{"text": "【示例商城】赌场开业"}, {"text": "【示例商城】您好"},
                                                {"text": "【示例商城】您好"}]})
    assert r.status_code == 200
    ids = [v["verdict_id"] for v in r.json()["verdicts"]]
    with backend.db.connect() as conn:
        rows = conn.execute(text("SELECT subject, actor, payload FROM audit_events WHERE tenant_id = :t "
                                 "AND event_type = 'verdict' ORDER BY id"), {"t": tid}).all()
    assert [row.subject for row in rows] == [f"verdict:{i}" for i in ids]
    assert rows[0].actor.startswith("key:sg_")
    assert [json.loads(row.payload)["decision"] for row in rows] == [v["decision"] for v in r.json()["verdicts"]]
    assert json.loads(rows[2].payload)["cached"] is True
    assert verify(backend.db).ok


def test_reload_records_policy_lexicon_model_events(backend, audit_client) -> None:
    _, _, headers = _tenant(backend, "admin")
    r = audit_client.post("/v1/admin/reload", headers=headers, json={"what": ["policy", "lexicon"]})
    assert r.status_code == 200
    with backend.db.connect() as conn:
        rows = conn.execute(text("SELECT event_type, subject, payload FROM audit_events "
                                 "WHERE event_type IN ('policy', 'lexicon', 'model') ORDER BY id DESC LIMIT 2")).all()
    assert sorted(r.event_type for r in rows) == ["lexicon", "policy"]
    assert all(json.loads(r.payload)["action"] == "reload" for r in rows)


def test_audit_routes_need_an_auditor_key(backend, audit_client) -> None:
    for role in (None, "admin"):
        _, _, headers = _tenant(backend, role)
        for url in ("/v1/audit/events", "/v1/audit/trail?batch=1"):
            r = audit_client.get(url, headers=headers)
            assert r.status_code == 403 and r.json()["code"] == "auth.forbidden"


def test_auditor_export_is_scoped_masked_audited(backend, audit_client) -> None:
    tid, name, auditor = _tenant(backend, "auditor")
    other_id, other, _ = _tenant(backend)
    with backend.db.begin() as conn:
        append_many(conn, [
            AuditEvent(event_type="optout", actor="system:mo", tenant_id=tid, subject=f"tenant:{tid}",
                       payload={"phone": "13812345678", "phone_encrypted": "ENC"}),
            AuditEvent(event_type="optout", actor="=cmd()", tenant_id=other_id, subject=f"tenant:{other_id}",
                       payload={}),
        ])
    r = audit_client.get("/v1/audit/events", headers=auditor, params={"format": "csv", "type": "optout"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(x["tenant_id"]) for x in rows] == [tid]  # its own tenant only
    assert "138****5678" in rows[0]["payload"] and "13812345678" not in r.text and "ENC" not in rows[0]["payload"]
    assert audit_client.get("/v1/audit/events", headers=auditor, params={"tenant": other}).status_code == 403
    bad = audit_client.get("/v1/audit/events", headers=auditor, params={"from": "yesterday"})
    assert bad.status_code == 400 and bad.json()["where"] == "query from"
    # the full auditor sees every tenant, numbers as stored; formula cells neutralized in CSV
    _, _, full = _tenant(backend, "auditor_full")
    r = audit_client.get("/v1/audit/events", headers=full, params={"format": "csv", "tenant": other})
    assert [x["actor"] for x in csv.DictReader(io.StringIO(r.text)) if x["event_type"] == "optout"] == ["'=cmd()"]
    r = audit_client.get("/v1/audit/events", headers=full, params={"tenant": name, "type": "optout"})
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert json.loads(r.text.splitlines()[0])["payload"]["phone"] == "13812345678"
    with backend.db.connect() as conn:  # each export above left an export event naming its filter
        exports = conn.execute(text("SELECT payload FROM audit_events WHERE event_type = 'export' "
                                    "AND tenant_id = :t"), {"t": tid}).scalars().all()
    assert len(exports) >= 1 and json.loads(exports[0])["filter"]["tenant_id"] == tid


def test_trail_by_batch_and_phone(backend, audit_client) -> None:
    tid, _, auditor = _tenant(backend, "auditor")
    ph = audit.phone_hash("13900001111", audit.load_phone_key(backend.data_dir))
    batch = uuid.uuid4().hex[:8]
    with backend.db.begin() as conn:
        append_many(conn, [
            AuditEvent(event_type="batch.submitted", actor="key:x", tenant_id=tid, subject=f"batch:{batch}"),
            AuditEvent(event_type="optout", actor="system:mo", tenant_id=tid, subject=f"phone:{ph}"),
            AuditEvent(event_type="release", actor="system:sender", tenant_id=tid, subject=f"recipient:{batch}:1",
                       payload={"phone_hash": ph}),
        ])
    by_batch = [json.loads(x) for x in audit_client.get("/v1/audit/trail", headers=auditor,
                                                        params={"batch": batch}).text.splitlines()]
    assert [e["event_type"] for e in by_batch] == ["batch.submitted", "release"]
    assert by_batch[0]["id"] < by_batch[1]["id"]
    by_phone = audit_client.get("/v1/audit/trail", headers=auditor, params={"phone": "+86 139 0000 1111"})
    assert [json.loads(x)["event_type"] for x in by_phone.text.splitlines()] == ["optout", "release"]
    assert audit_client.get("/v1/audit/trail", headers=auditor).status_code == 400


def _cli(backend, *args: str, db_url: str) -> subprocess.CompletedProcess:
    env = backend.env(DATABASE_URL=db_url)
    return subprocess.run([sys.executable, "-m", "smsguard", "audit", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_verify_checkpoint_export_archive(backend, fresh_db, filler, tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    url = fresh_db.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    filler(fresh_db, 30, at=datetime.now(UTC) - timedelta(days=500))
    filler(fresh_db, 5, payload={"note": "=1+1", "phone": "13812345678"})
    r = _cli(backend, "checkpoint", db_url=url)
    assert r.returncode == 0 and "checkpoint 1: event 35" in r.stdout, r.stderr
    r = _cli(backend, "verify", db_url=url)
    assert r.returncode == 0 and "OK" in r.stdout and "35" in r.stdout, r.stdout + r.stderr
    out = tmp_path / "x.csv"
    r = _cli(backend, "export", "--format", "csv", "--out", str(out), db_url=url)
    assert r.returncode == 0, r.stderr
    text_out = out.read_text()
    assert "13812345678" not in text_out and "138****5678" in text_out
    r = _cli(backend, "archive", "--out-dir", str(tmp_path / "arc"), db_url=url)
    assert r.returncode == 0 and "archived events 1..30" in r.stdout, r.stdout + r.stderr
    r = _cli(backend, "verify", "--json", db_url=url)
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["ok"] and report["first_id"] == 31, r.stdout
    [archive_file] = (tmp_path / "arc").glob("*.jsonl.gz")
    assert _cli(backend, "verify-archive", str(archive_file), db_url=url).returncode == 0
    with fresh_db.begin() as conn:
        conn.execute(text("UPDATE audit_events SET payload = '{}' WHERE id = 33"))
    r = _cli(backend, "verify", db_url=url)
    assert r.returncode == 1 and "BROKEN at event 33" in r.stdout
    assert os.stat(backend.data_dir / "audit-signing.key").st_mode & 0o077 == 0
