"""Exports (CSV/JSONL, masking, formula injection, constant memory), trails and archives (both backends)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from smsguard import audit
from smsguard.audit import (
    AuditEvent,
    EventFilter,
    append_many,
    archive,
    record_export,
    stream_events,
    verify,
    verify_archive,
)


def _export(db, flt=EventFilter(), fmt="jsonl", unmask=False) -> bytes:  # noqa: B008 - frozen, never mutated
    return b"".join(stream_events(db, flt, fmt, unmask=unmask))


def test_csv_neutralizes_formulas_and_jsonl_stays_verifiable(fresh_db) -> None:
    evil = ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "plain"]
    with fresh_db.begin() as conn:
        append_many(conn, [AuditEvent(event_type="review", actor=a, tenant_id=1, subject=f"review:{i}",
                                      payload={"note": a}) for i, a in enumerate(evil)])
    rows = list(csv.DictReader(io.StringIO(_export(fresh_db, fmt="csv").decode())))
    assert [r["actor"] for r in rows] == ["'" + a for a in evil[:-1]] + ["plain"]
    assert all(not r[c].startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for c in r)
    # JSONL is not for spreadsheets: byte-exact, so each line re-hashes to its stored hash
    for line in _export(fresh_db, unmask=True).splitlines():
        e = json.loads(line)
        payload = json.dumps(e["payload"], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        assert audit.event_hash(e["id"], e["ts"], e["actor"], e["tenant_id"], e["event_type"], e["subject"],
                                payload, e["prev_hash"]) == e["hash"]


def test_numbers_are_masked_unless_allowed(fresh_db) -> None:
    with fresh_db.begin() as conn:
        append_many(conn, [AuditEvent(event_type="optout", actor="user:13912345678", tenant_id=1,
                                      subject="tenant:1",
                                      payload={"note": "reply from 13812345678", "phone_encrypted": "ENC(abc)"})])
    masked = _export(fresh_db).decode()
    assert "13812345678" not in masked and "138****5678" in masked and "139****5678" in masked
    assert "ENC(abc)" not in masked and "[withheld]" in masked
    full = _export(fresh_db, unmask=True).decode()
    assert "13812345678" in full and "ENC(abc)" in full


def test_filters_by_tenant_time_and_type(fresh_db, filler) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    filler(fresh_db, 5, tenant_id=1, at=old)
    filler(fresh_db, 4, tenant_id=2)
    filler(fresh_db, 3, tenant_id=2, event_type="review.approve")

    def ids(flt: EventFilter) -> list[int]:
        return [json.loads(x)["id"] for x in _export(fresh_db, flt).splitlines()]

    assert ids(EventFilter(tenant_id=1)) == [1, 2, 3, 4, 5]
    assert ids(EventFilter(since=old + timedelta(days=1))) == list(range(6, 13))
    assert ids(EventFilter(until=old + timedelta(days=1))) == [1, 2, 3, 4, 5]
    assert ids(EventFilter(types=("review.*",))) == [10, 11, 12]
    assert ids(EventFilter(tenant_id=2, types=("verdict",))) == [6, 7, 8, 9]


def test_export_is_itself_audited(fresh_db) -> None:
    subject = record_export(fresh_db, actor="cli:auditor", tenant_id=None, flt=EventFilter(tenant_id=4),
                            fmt="csv", unmask=False)
    [e] = [json.loads(x) for x in _export(fresh_db).splitlines()]
    assert (e["event_type"], e["subject"], e["actor"]) == ("export", subject, "cli:auditor")
    assert e["payload"] == {"filter": {"tenant_id": 4}, "format": "csv", "masked": True}


def test_trail_of_a_batch_and_a_number_in_order(fresh_db, tmp_path) -> None:
    key = audit.load_phone_key(tmp_path)
    ph = audit.phone_hash("13812345678", key)
    events = [
        AuditEvent(event_type="batch.submitted", actor="key:a", tenant_id=1, subject="batch:42", payload={}),
        AuditEvent(event_type="verdict", actor="key:a", tenant_id=1, subject="verdict:v1", payload={"batch_id": 42}),
        AuditEvent(event_type="batch.submitted", actor="key:a", tenant_id=1, subject="batch:43", payload={}),
        AuditEvent(event_type="optout", actor="system:mo", tenant_id=1, subject="phone:" + ph, payload={}),
        AuditEvent(event_type="release", actor="key:a", tenant_id=1, subject="recipient:42:7",
                   payload={"phone_hash": ph, "phone": audit.mask_phone("13812345678")}),
        AuditEvent(event_type="release", actor="key:a", tenant_id=1, subject="recipient:43:1", payload={}),
    ]
    with fresh_db.begin() as conn:
        append_many(conn, events)

    def trail(flt: EventFilter) -> list[tuple[int, str]]:
        return [(e["id"], e["subject"]) for e in map(json.loads, _export(fresh_db, flt).splitlines())]

    assert trail(EventFilter(batch="42")) == [(1, "batch:42"), (2, "verdict:v1"), (5, "recipient:42:7")]
    assert trail(EventFilter(phone_ref=ph)) == [(4, "phone:" + ph), (5, "recipient:42:7")]


def test_archive_then_verify_continues_from_the_archive(fresh_db, filler, data_dir, tmp_path) -> None:
    old = datetime.now(UTC) - timedelta(days=400)
    filler(fresh_db, 50, at=old)
    filler(fresh_db, 10)
    with pytest.raises(audit.AuditError, match="retention"):
        archive(fresh_db, before=datetime.now(UTC), out_dir=tmp_path / "arc", data_dir=data_dir, actor="cli:t",
                retention_days=365)
    result = archive(fresh_db, before=datetime.now(UTC) - timedelta(days=365), out_dir=tmp_path / "arc",
                     data_dir=data_dir, actor="cli:t", retention_days=365)
    assert result is not None and (result.first_id, result.last_id, result.count) == (1, 50, 50)
    assert result.path.exists()
    proof = verify_archive(result.path)
    assert proof["last_hash"] == result.last_hash and proof["count"] == 50
    with fresh_db.connect() as conn:
        assert conn.execute(text("SELECT min(id), count(*) FROM audit_events")).one() == (51, 11)
        kind, payload = conn.execute(text("SELECT event_type, payload FROM audit_events WHERE id = :i"),
                                     {"i": result.event_id}).one()
    assert kind == "archive" and json.loads(payload)["last_hash"] == result.last_hash
    report = verify(fresh_db, public_key=audit.public_key_of(data_dir))
    assert report.ok, report.problem
    assert (report.first_id, report.last_id) == (51, 61)
    # the archive is not silently replaceable: a tampered file fails, and losing the archive row breaks verify
    lines = gzip.decompress(result.path.read_bytes()).splitlines()
    lines[3] = lines[3].replace(b'"pass"', b'"block"')
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    with pytest.raises(audit.AuditError, match="event 4"):
        verify_archive(bad)
    with fresh_db.begin() as conn:
        conn.execute(text("DELETE FROM audit_archives"))
    assert verify(fresh_db).broken_event == 51


@pytest.mark.slow
def test_export_streams_in_constant_memory(fresh_db, filler) -> None:
    n = 100_000
    filler(fresh_db, n, payload={"decision": "pass", "score": 0.12, "note": "x" * 40})
    for fmt in ("jsonl", "csv"):
        tracemalloc.start()
        size = 0
        for chunk in stream_events(fresh_db, EventFilter(), fmt):
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert size > 25_000_000  # ~300 bytes an event: the export is far larger than the bound below
        assert peak < 8_000_000, f"{fmt}: peak {peak:,} bytes for a {size:,}-byte export"
