"""The keyed chain and checkpoints anchored outside the database: every tamper case of issue 15 (truncation,
deleted checkpoints, edit + re-hash) is found and named at its first bad event, on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import select, text, update

from smsguard import audit
from smsguard.audit import Anchors, Schedule, chain_key, event_hash, load_signing_key, sign_head, ts_text, verify
from smsguard.audit._anchor import check_anchor
from smsguard.audit._tables import checkpoints, events
from smsguard.core import generate_secrets
from smsguard.engine import PROJECT_ROOT


@pytest.fixture
def key(data_dir: Path, fresh_db):
    """The deployment signing key; this process MACs its appends with the chain key derived from it."""
    k = load_signing_key(data_dir)
    audit.use_signing_key(k)
    return k


@pytest.fixture
def anchors(tmp_path: Path) -> Anchors:
    return Anchors(directory=tmp_path / "anchors")


def _sql(db, sql: str, **params) -> None:
    with db.begin() as conn:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(text(statement), params)


def _rehash_from(db, first: int) -> None:
    """What an attacker with SQL access but no key does after editing event ``first``: recompute every hash
    from there on (SHA-256 is public), re-link the chain and move the head, keeping the old MACs."""
    with db.begin() as conn:
        rows = conn.execute(select(events).where(events.c.id >= first).order_by(events.c.id)).all()
        prev = conn.execute(text("SELECT hash FROM audit_events WHERE id = :i"), {"i": first - 1}).scalar()
        for r in rows:
            h = event_hash(r.id, ts_text(r.ts), r.actor, r.tenant_id, r.event_type, r.subject, r.payload, prev)
            conn.execute(text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :i"),
                         {"p": prev, "h": h, "i": r.id})
            prev = h
        conn.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})


def _check(db, key, anchors: Anchors | None, *, keyed: bool = True):
    return verify(db, public_key=key.public_key(), chain_key=chain_key(key) if keyed else None,
                  anchors=None if anchors is None else anchors.directory)


def test_anchor_files_mirror_signed_checkpoints(fresh_db, filler, key, anchors) -> None:
    filler(fresh_db, 12)
    cp = sign_head(fresh_db, key, anchors=anchors)
    assert cp is not None and cp.event_id == 12
    [path] = sorted(anchors.directory.glob("checkpoint-*.json"))
    doc = json.loads(path.read_text())
    assert (doc["checkpoint_id"], doc["event_id"], doc["keyed_from"]) == (cp.id, 12, 1)
    assert doc["event_hash"] == cp.event_hash
    assert check_anchor(doc, key.public_key())
    report = _check(fresh_db, key, anchors)
    assert report.ok, report.problem
    assert (report.macs_checked, report.anchors_checked, report.unkeyed) == (12, 1, 0)


def test_truncation_with_the_head_moved_is_found(fresh_db, filler, key, anchors) -> None:
    filler(fresh_db, 20)
    sign_head(fresh_db, key, anchors=anchors)
    _sql(fresh_db, "DELETE FROM audit_events WHERE id > 15;"
                   "UPDATE audit_head SET last_id = 15, last_hash = (SELECT hash FROM audit_events WHERE id = 15)")
    # the chain key alone catches it (the head's MAC), even with every checkpoint deleted too
    _sql(fresh_db, "DELETE FROM audit_checkpoints")
    report = _check(fresh_db, key, None)
    assert not report.ok and report.broken_event == 16 and "audit_head" in report.problem
    # an auditor with only the public key: the anchor outside the database catches it
    report = _check(fresh_db, key, anchors, keyed=False)
    assert not report.ok and report.broken_event == 16 and "beyond the head" in report.problem


def test_deleted_checkpoints_are_found_only_through_anchors(fresh_db, filler, key, anchors) -> None:
    filler(fresh_db, 10)
    sign_head(fresh_db, key, anchors=anchors)
    filler(fresh_db, 5)
    sign_head(fresh_db, key, anchors=anchors)
    _sql(fresh_db, "DELETE FROM audit_checkpoints")
    assert _check(fresh_db, key, None).ok  # the documented limit: SQL alone cannot miss what it never shows
    report = _check(fresh_db, key, anchors)
    assert not report.ok and "missing from the database" in report.problem


def test_edit_and_rehash_is_named_at_the_edited_event(fresh_db, filler, key, anchors) -> None:
    for _ in range(3):  # checkpoints at 10, 20, 30
        filler(fresh_db, 10)
        sign_head(fresh_db, key, anchors=anchors)
    _sql(fresh_db, "UPDATE audit_events SET payload = '{\"decision\":\"block\"}' WHERE id = 13")
    _rehash_from(fresh_db, 13)
    assert verify(fresh_db).ok  # plain SHA-256 with no key and no checkpoint: a consistent rewrite passes
    # with the chain key: the first event whose MAC fails is the edited one, with or without anchors
    for a in (None, anchors):
        report = _check(fresh_db, key, a)
        assert not report.ok and report.broken_event == 13 and "MAC" in report.problem, report.problem
    # with anchors but no chain key: caught at the first anchored event, narrowed to the range after the last good one
    _sql(fresh_db, "DELETE FROM audit_checkpoints")
    report = _check(fresh_db, key, anchors, keyed=False)
    assert not report.ok and report.broken_event == 20 and "11..20" in report.problem, report.problem


def test_rewrite_after_the_last_checkpoint_needs_the_chain_key(fresh_db, filler, key, anchors) -> None:
    filler(fresh_db, 10)
    sign_head(fresh_db, key, anchors=anchors)
    filler(fresh_db, 10)
    _sql(fresh_db, "UPDATE audit_events SET actor = 'someone else' WHERE id = 17")
    _rehash_from(fresh_db, 17)
    assert _check(fresh_db, key, anchors, keyed=False).ok  # past every anchor, SHA-256 alone cannot tell
    report = _check(fresh_db, key, anchors)
    assert not report.ok and report.broken_event == 17


def test_tampered_or_forged_anchor_files_fail(fresh_db, filler, key, anchors) -> None:
    filler(fresh_db, 4)
    sign_head(fresh_db, key, anchors=anchors)
    [path] = list(anchors.directory.glob("checkpoint-*.json"))
    doc = json.loads(path.read_text())
    doc["keyed_from"] = 3
    path.write_text(json.dumps(doc))
    report = _check(fresh_db, key, anchors)
    assert not report.ok and "bad signature" in report.problem


def test_moving_keyed_from_is_found(fresh_db, filler, key, anchors) -> None:
    filler(fresh_db, 8)
    sign_head(fresh_db, key, anchors=anchors)
    _sql(fresh_db, "UPDATE audit_head SET keyed_from = 6")
    report = _check(fresh_db, key, None)
    assert not report.ok and "audit_head" in report.problem


def test_schedule_lives_in_sql_not_in_a_process(fresh_db, filler, key, anchors) -> None:
    every = Schedule(every_events=50, every_minutes=60)
    assert sign_head(fresh_db, key, anchors=anchors, schedule=every) is None  # an empty log: nothing to sign
    filler(fresh_db, 3)
    assert sign_head(fresh_db, key, anchors=anchors, schedule=every) is not None  # the first one is always due
    filler(fresh_db, 10)
    assert sign_head(fresh_db, key, anchors=anchors, schedule=every) is None  # 10 events, 0 minutes: not yet
    filler(fresh_db, 40)
    cp = sign_head(fresh_db, key, anchors=anchors, schedule=every)
    assert cp is not None and cp.event_id == 53  # 50 events since the last one
    filler(fresh_db, 1)
    assert sign_head(fresh_db, key, anchors=anchors, schedule=every) is None
    # "a restart" is just another call: the age comes from the newest checkpoint row, not from an uptime clock
    with fresh_db.begin() as conn:
        made = conn.execute(select(checkpoints.c.created_at).where(checkpoints.c.id == cp.id)).scalar_one()
        conn.execute(update(checkpoints).where(checkpoints.c.id == cp.id)
                     .values(created_at=made - timedelta(minutes=61)))
    # (the anchor of that checkpoint keeps its signed time; only the schedule is looked at here)
    assert sign_head(fresh_db, key, anchors=anchors, schedule=every).event_id == 54


class _Witness(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_checkpoints_reach_a_witness(fresh_db, filler, key) -> None:
    witness = type("Witness", (_Witness,), {"received": []})
    server = HTTPServer(("127.0.0.1", 0), witness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        filler(fresh_db, 5)
        url = f"http://127.0.0.1:{server.server_port}/anchor"
        cp = sign_head(fresh_db, key, anchors=Anchors(witness_url=url))
    finally:
        server.shutdown()
    [doc] = witness.received
    assert doc["event_id"] == cp.event_id and check_anchor(doc, key.public_key())


def test_cli_verify_with_anchors_names_the_first_bad_event(fresh_db, filler, key, anchors, data_dir) -> None:
    filler(fresh_db, 10)
    sign_head(fresh_db, key, anchors=anchors)
    filler(fresh_db, 10)
    sign_head(fresh_db, key, anchors=anchors)
    generate_secrets(data_dir)  # DATABASE_URL is set: the deployment's secrets are configured, not generated
    env = {"DATABASE_URL": fresh_db.url.render_as_string(hide_password=False), "SMSGUARD_DATA_DIR": str(data_dir),
           "SMSGUARD_SECRETS_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}

    def run() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "smsguard", "audit", "verify", "--anchors",
                               str(anchors.directory)], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=120)

    ok = run()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "20 MAC(s) and 2 anchor file(s) checked" in ok.stdout
    _sql(fresh_db, "UPDATE audit_events SET payload = '{}' WHERE id = 4")
    _rehash_from(fresh_db, 4)
    bad = run()
    assert bad.returncode == 1 and "BROKEN at event 4:" in bad.stdout, bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
