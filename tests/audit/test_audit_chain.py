"""The append contract, concurrency, and tampering detected by verify (both backends)."""

from __future__ import annotations

import itertools
import os
import stat
import subprocess
import sys
import threading

import pytest
from sqlalchemy import text

from smsguard import audit
from smsguard.audit import GENESIS_HASH, AuditError, AuditEvent, append, append_many, checkpoint, verify
from smsguard.engine import PROJECT_ROOT


def test_append_returns_ids_and_chains_from_genesis(fresh_db) -> None:
    with fresh_db.begin() as conn:
        first = append(conn, event_type="optout", actor="user:ops", tenant_id=3, subject="phone:" + "a" * 64,
                       payload={"source": "mo", "phone": audit.mask_phone("+86 138 1234 5678")})
        more = append_many(conn, [AuditEvent(event_type="batch.submitted", actor="key:sg_x", tenant_id=3,
                                             subject="batch:7", payload={}) for _ in range(3)])
    assert (first, more) == (1, [2, 3, 4])
    with fresh_db.connect() as conn:
        rows = conn.execute(text("SELECT id, prev_hash, hash, payload, batch_ref, phone_ref FROM audit_events "
                                 "ORDER BY id")).all()
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert rows[0].payload == '{"phone":"138****5678","source":"mo"}'  # canonical: sorted keys, masked
    assert (rows[0].phone_ref, rows[1].batch_ref) == ("a" * 64, "7")
    assert verify(fresh_db).ok


def test_event_commits_with_the_callers_rows_or_not_at_all(fresh_db) -> None:
    with fresh_db.begin() as conn:
        append(conn, event_type="policy", actor="cli:x", tenant_id=None, subject="policy", payload={})
    with pytest.raises(RuntimeError), fresh_db.begin() as conn:
        append(conn, event_type="optout", actor="cli:x", tenant_id=1, subject="tenant:1", payload={})
        raise RuntimeError("the caller's own write failed")
    with fresh_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 1
        assert conn.execute(text("SELECT last_id FROM audit_head")).scalar() == 1
    with fresh_db.begin() as conn:  # the chain continues from the committed head
        assert append(conn, event_type="policy", actor="cli:x", tenant_id=None, subject="policy", payload={}) == 2
    assert verify(fresh_db).ok


@pytest.mark.parametrize("subject", ["phone:13812345678", "recipient:4:13812345678", "tenant:+8613812345678"])
def test_raw_phone_numbers_are_refused_in_subjects(fresh_db, subject: str) -> None:
    with pytest.raises(AuditError), fresh_db.begin() as conn:
        append(conn, event_type="optout", actor="x", tenant_id=1, subject=subject, payload={})


def test_phone_subject_is_a_keyed_hash(tmp_path) -> None:
    key = audit.load_phone_key(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "phone-hash.key").st_mode) == 0o600
    a, b = audit.phone_subject("13812345678", key), audit.phone_subject("+86 138-1234-5678", key)
    assert a == b and a.startswith("phone:") and "13812345678" not in a
    assert audit.phone_subject("13812345678", b"other key") != a


def test_concurrent_threads_never_fork_the_chain(fresh_db) -> None:
    def writer(n: int) -> None:
        for i in range(40):
            with fresh_db.begin() as conn:
                append(conn, event_type="verdict", actor=f"t{n}", tenant_id=n, subject=f"verdict:{n}-{i}",
                       payload={"i": i})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = verify(fresh_db)
    assert report.ok, report.problem
    assert report.checked == 160
    with fresh_db.connect() as conn:
        assert conn.execute(text("SELECT count(DISTINCT prev_hash) FROM audit_events")).scalar() == 160


_WRITER = """
import sys
from smsguard.storage import make_engine
from smsguard.audit import AuditEvent, append_many
db = make_engine(sys.argv[1])
for i in range(25):
    with db.begin() as conn:
        append_many(conn, [AuditEvent(event_type="verdict", actor="p" + sys.argv[2], tenant_id=1,
                                      subject=f"verdict:{sys.argv[2]}-{i}-{j}", payload={}) for j in range(3)])
"""


def test_concurrent_processes_never_fork_the_chain(fresh_db) -> None:
    url = fresh_db.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, url, str(n)], cwd=PROJECT_ROOT) for n in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    report = verify(fresh_db)
    assert report.ok, report.problem
    assert report.checked == 3 * 25 * 3


# -- tampering: each kind is found, and verify names the event ---------------------------------------------
def _tamper(db, sql: str) -> None:
    with db.begin() as conn:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(text(statement))


@pytest.mark.parametrize(
    ("sql", "broken", "words"),
    [
        ("UPDATE audit_events SET payload = '{\"decision\":\"block\"}' WHERE id = 5", 5, "content"),
        ("UPDATE audit_events SET actor = 'someone else' WHERE id = 7", 7, "content"),
        ("UPDATE audit_events SET ts = ts - INTERVAL '1 hour' WHERE id = 3", 3, "content"),
        ("DELETE FROM audit_events WHERE id = 5", 6, "missing"),
        ("DELETE FROM audit_events WHERE id >= 9", 9, "missing"),
        # reorder: events 4 and 5 swap places (ids swapped through a free id)
        ("UPDATE audit_events SET id = 1000 WHERE id = 4; UPDATE audit_events SET id = 4 WHERE id = 5;"
         "UPDATE audit_events SET id = 5 WHERE id = 1000", 4, "prev_hash"),
        # re-link: event 6 edited and re-hashed by someone without the chain: its successor no longer links
        ("UPDATE audit_events SET payload = '{}', hash = (SELECT hash FROM audit_events WHERE id = 2) WHERE id = 6",
         6, "content"),
        ("UPDATE audit_events SET batch_ref = 'other' WHERE id = 2", 2, "batch_ref"),
    ],
    ids=["edit-payload", "edit-actor", "edit-time", "delete", "delete-tail", "reorder", "rehash", "trail-column"],
)
def test_verify_names_the_first_broken_event(fresh_db, filler, sql: str, broken: int, words: str) -> None:
    filler(fresh_db, 10)
    assert verify(fresh_db).ok
    if fresh_db.dialect.name == "sqlite":
        sql = sql.replace("ts - INTERVAL '1 hour'", "datetime(ts, '-1 hour')")
    _tamper(fresh_db, sql)
    report = verify(fresh_db)
    assert not report.ok
    assert report.broken_event == broken, report.problem
    assert words in report.problem


def test_ranged_verify_and_its_anchor(fresh_db, filler) -> None:
    filler(fresh_db, 20)
    _tamper(fresh_db, "UPDATE audit_events SET payload = '{}' WHERE id = 15")
    assert verify(fresh_db, from_id=5, to_id=14).ok
    assert verify(fresh_db, from_id=5).broken_event == 15


def test_checkpoints_are_signed_and_checked(fresh_db, filler, data_dir) -> None:
    filler(fresh_db, 5)
    cp = checkpoint(fresh_db, data_dir)
    assert cp is not None and cp.event_id == 5
    assert stat.S_IMODE(os.stat(data_dir / "audit-signing.key").st_mode) == 0o600
    assert checkpoint(fresh_db, data_dir, only_if_moved=True) is None  # nothing new to sign
    pub = audit.public_key_of(data_dir)
    report = verify(fresh_db, public_key=pub)
    assert report.ok and report.checkpoints_checked == 1 and not report.checkpoint_problems
    # tail truncation that also rewrites the head row: only the checkpoint can tell
    _tamper(fresh_db, "DELETE FROM audit_events WHERE id = 5;"
                      "UPDATE audit_head SET last_id = 4, last_hash = (SELECT hash FROM audit_events WHERE id = 4)")
    report = verify(fresh_db, public_key=pub)
    assert not report.ok and report.broken_event == 5 and "beyond the head" in report.problem


def test_forged_checkpoint_is_refused(fresh_db, filler, data_dir) -> None:
    filler(fresh_db, 3)
    checkpoint(fresh_db, data_dir)
    _tamper(fresh_db, "UPDATE audit_checkpoints SET event_hash = '" + "f" * 64 + "'")
    report = verify(fresh_db, public_key=audit.public_key_of(data_dir))
    assert not report.ok and "bad signature" in report.problem
