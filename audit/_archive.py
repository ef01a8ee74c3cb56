"""Retention: old events move to a gzip JSONL file with their chain proof; never silently deleted.

``archive`` verifies the events first (a broken chain is evidence, not something to archive away),
signs a checkpoint over the last archived event, writes ``audit-<first>-<last>.jsonl.gz`` (one event a
line, as the JSONL export writes them unmasked, then a last line ``{"proof": …}`` with first/last id,
count, the first event's ``prev_hash``, the last ``hash``, the checkpoint and the public key), fsyncs it,
reads it back and re-verifies it, and only then, in one transaction, deletes those rows, records the
archive in ``audit_archives`` and appends an ``archive`` event. ``verify`` then starts from the archive's
last hash.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, delete, func, insert, select

from ._chain import AuditError, append, event_hash
from ._export import EventFilter, _jsonl_chunks, _rows
from ._signing import check_signature, load_public_key, load_signing_key, public_pem, sign_checkpoint
from ._tables import archives, events
from ._verify import verify


class _Line(msgspec.Struct):
    """One archive line; ``payload`` stays the exact bytes that were hashed."""

    id: int = 0
    ts: str = ""
    actor: str = ""
    tenant_id: int | None = None
    event_type: str = ""
    subject: str = ""
    payload: msgspec.Raw = msgspec.Raw(b"{}")
    prev_hash: str = ""
    hash: str = ""
    proof: dict | None = None


_dec = msgspec.json.Decoder(_Line)


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    path: Path
    first_id: int
    last_id: int
    count: int
    last_hash: str
    file_sha256: str
    event_id: int


def archive(
    db: Engine,
    *,
    before: datetime,
    out_dir: Path,
    data_dir: Path | bytes,
    actor: str,
    retention_days: int | None = None,
) -> ArchiveResult | None:
    """Archive every event older than ``before`` (None when there is nothing to archive). With
    ``retention_days``, refuse a ``before`` that would archive events still inside the retention period."""
    if before.tzinfo is None:
        before = before.replace(tzinfo=UTC)
    if retention_days is not None:
        limit = datetime.now(UTC) - timedelta(days=retention_days)
        if before > limit:
            raise AuditError(
                f"events after {limit:%Y-%m-%d %H:%M} UTC are inside the retention period ({retention_days} days)",
                where="--before",
                code="audit.retention",
            )
    with db.connect() as conn:
        first = conn.execute(select(func.min(events.c.id))).scalar()
        last = conn.execute(select(func.max(events.c.id)).where(events.c.ts < before)).scalar()
    if first is None or last is None or last < first:
        return None
    key = load_signing_key(data_dir)
    report = verify(db, to_id=last, public_key=key.public_key())
    if not report.ok:
        raise AuditError(f"refusing to archive a broken chain: {report.problem}", where=f"event {report.broken_event}",
                         code="audit.broken")
    with db.begin() as conn:
        first_prev, last_hash = (
            conn.execute(select(events.c.prev_hash).where(events.c.id == first)).scalar_one(),
            conn.execute(select(events.c.hash).where(events.c.id == last)).scalar_one(),
        )
        cp = sign_checkpoint(conn, key, last, last_hash)
    proof = {
        "first_id": first, "last_id": last, "count": last - first + 1, "first_prev_hash": first_prev,
        "last_hash": last_hash, "checkpoint": cp.to_dict(), "public_key": public_pem(key),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"audit-{first:012d}-{last:012d}.jsonl.gz"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, db.connect() as conn:
            for chunk in _jsonl_chunks(_rows(conn, EventFilter(from_id=first, to_id=last), 5000), unmask=True):
                gz.write(chunk)
            gz.write(msgspec.json.encode({"proof": proof}) + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(out_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    checked = verify_archive(path, key.public_key())  # what is on disk, not what we meant to write
    if (checked["first_id"], checked["last_id"], checked["last_hash"]) != (first, last, last_hash):
        raise AuditError(f"{path}: re-read archive differs from the database", code="audit.archive")
    digest = _sha256_file(path)
    with db.begin() as conn:
        conn.execute(delete(events).where(events.c.id >= first, events.c.id <= last))
        conn.execute(
            insert(archives).values(
                created_at=datetime.now(UTC), path=str(path), first_id=first, last_id=last, count=last - first + 1,
                first_prev_hash=first_prev, last_hash=last_hash, file_sha256=digest, checkpoint_id=cp.id,
            )
        )
        event_id = append(
            conn, event_type="archive", actor=actor, tenant_id=None, subject=f"archive:{first}-{last}",
            payload={"path": str(path), "first_id": first, "last_id": last, "count": last - first + 1,
                     "first_prev_hash": first_prev, "last_hash": last_hash, "file_sha256": digest,
                     "before": before.isoformat()},
        )
    return ArchiveResult(path, first, last, last - first + 1, last_hash, digest, event_id)


def verify_archive(path: Path, public_key: Ed25519PublicKey | None = None) -> dict[str, object]:
    """Re-verify an archive file on its own: the chain inside it, its proof line and the proof's signature
    (with ``public_key``, else the key the proof carries). Raises AuditError naming the first bad event."""
    proof: dict | None = None
    prev: str | None = None
    expect: int | None = None
    count = 0
    first_prev = last_hash = None
    with gzip.open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            obj = _dec.decode(line)
            if obj.proof is not None:
                proof = obj.proof
                continue
            if proof is not None:
                raise AuditError(f"{path}: events after the proof line", where=f"line {n}", code="audit.archive")
            if prev is None:
                prev, expect, first_prev = obj.prev_hash, obj.id, obj.prev_hash
            h = event_hash(obj.id, obj.ts, obj.actor, obj.tenant_id, obj.event_type, obj.subject,
                           bytes(obj.payload).decode(), obj.prev_hash)
            if obj.id != expect or obj.prev_hash != prev or h != obj.hash:
                raise AuditError(f"{path}: chain broken at event {obj.id}", where=f"line {n}", code="audit.archive")
            prev, expect, last_hash = obj.hash, obj.id + 1, obj.hash
            count += 1
    if proof is None:
        raise AuditError(f"{path}: no proof line", code="audit.archive")
    if (proof["count"], proof["first_prev_hash"], proof["last_hash"]) != (count, first_prev, last_hash):
        raise AuditError(f"{path}: proof does not match the events", code="audit.archive")
    cp = proof["checkpoint"]
    pub = public_key or load_public_key(proof["public_key"])

    class _Row:  # check_signature reads attributes, as of a checkpoints row
        created_at = datetime.strptime(cp["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        event_id, event_hash, key_id, signature = cp["event_id"], cp["event_hash"], cp["key_id"], cp["signature"]

    if cp["event_id"] != proof["last_id"] or cp["event_hash"] != last_hash or not check_signature(pub, _Row):
        raise AuditError(f"{path}: the proof's checkpoint signature does not hold", code="audit.archive")
    return proof


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
