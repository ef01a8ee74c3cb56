"""Appending to the hash chain.

Each event's ``hash`` is SHA-256 over the compact JSON array
``[id, ts, actor, tenant_id, event_type, subject, payload, prev_hash]`` where ``ts`` is
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC), ``payload`` is the stored canonical JSON (sorted keys, msgspec)
embedded as is, and ``prev_hash`` is the previous event's ``hash`` (``"0" * 64`` before event 1).

Appends are serialized on the one row of ``audit_head`` (the newest id and hash): PostgreSQL locks it
with ``SELECT … FOR UPDATE`` until the caller commits; SQLite takes the database write lock with an
``UPDATE`` of it (the same lock ``BEGIN IMMEDIATE`` takes). So two writers never read the same head and
the chain never forks; ids are consecutive and assigned under the lock.

Each row also gets ``mac`` = HMAC-SHA256 of its ``hash`` under the chain key, and the head a MAC over
(last_id, last_hash, keyed_from) (see ``audit._mac``): re-hashing or cutting the chain needs that key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, text

from smsguard.core import SmsguardError
from smsguard.phones import phone_pattern

from ._mac import event_mac, head_mac, process_chain_key

_PAYLOAD = msgspec.json.Encoder(order="sorted")
_HASHED = msgspec.json.Encoder()
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_COLUMNS = "id, ts, actor, tenant_id, event_type, subject, payload, prev_hash, hash, batch_ref, phone_ref, mac"
_INSERT_SQLITE = f"INSERT INTO audit_events ({_COLUMNS}) VALUES ({', '.join(['?'] * 12)})"
_INSERT_PG = f"INSERT INTO audit_events ({_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"


class AuditError(SmsguardError):
    code = "audit.invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One event to append: what happened (``event_type``), who did it (``actor``), to what (``subject``)."""

    event_type: str
    actor: str
    tenant_id: int | None
    subject: str
    payload: Mapping[str, Any] = field(default_factory=dict)


def ts_text(ts: datetime) -> str:
    """The canonical form of an event time; a naive time (SQLite reads them so) is UTC."""
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    event_id: int,
    ts: str,
    actor: str,
    tenant_id: int | None,
    event_type: str,
    subject: str,
    payload: str,
    prev_hash: str,
) -> str:
    raw = _HASHED.encode(
        (event_id, ts, actor, tenant_id, event_type, subject, msgspec.Raw(payload.encode()), prev_hash)
    )
    return hashlib.sha256(raw).hexdigest()


def refs(subject: str, payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(batch_ref, phone_ref): the batch and the keyed phone hash an event touches, for trails."""
    batch = payload.get("batch_id")
    phone = payload.get("phone_hash")
    kind, _, rest = subject.partition(":")
    if kind == "batch" and rest:
        batch = rest
    elif kind == "recipient" and rest:
        batch = rest.split(":", 1)[0]
    elif kind == "phone" and rest:
        phone = rest
    return (None if batch is None else str(batch)[:64], None if phone is None else str(phone)[:64])


def _check(e: AuditEvent) -> bytes:
    if not _TYPE_RE.match(e.event_type):
        raise AuditError(f"event_type {e.event_type!r}: lower-case a-z 0-9 _ . (≤ 64)", where="event_type")
    if not e.actor or len(e.actor) > 200:
        raise AuditError("actor: 1-200 characters", where="actor")
    if not e.subject or len(e.subject) > 300:
        raise AuditError("subject: 1-300 characters", where="subject")
    kind, _, rest = e.subject.partition(":")
    if kind == "phone":
        if not _HEX64.match(rest):
            raise AuditError("subject phone:<keyed hash> takes audit.phone_hash(), never a number", where="subject")
    elif any(phone_pattern().fullmatch(part) for part in e.subject.split(":")):
        raise AuditError("a subject must not carry a phone number; use phone:<keyed hash>", where="subject")
    if not isinstance(e.payload, Mapping):
        raise AuditError("payload must be a JSON object", where="payload")
    try:
        return _PAYLOAD.encode(e.payload)
    except (TypeError, msgspec.EncodeError) as exc:
        raise AuditError(f"payload is not JSON-encodable: {exc}", where="payload") from None


def lock_head(conn: Connection) -> tuple[int, str, int]:
    """Take the chain lock; returns the head's (last_id, last_hash, keyed_from)."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(text("SELECT last_id, last_hash, keyed_from FROM audit_head WHERE id = 1 FOR UPDATE")).one()
    else:  # a write first: it takes SQLite's write lock (busy_timeout waits for it) before we read the head
        conn.execute(text("UPDATE audit_head SET last_id = last_id WHERE id = 1"))
        row = conn.execute(text("SELECT last_id, last_hash, keyed_from FROM audit_head WHERE id = 1")).one()
    return int(row[0]), str(row[1]), int(row[2])


def append_many(conn: Connection, batch: Sequence[AuditEvent]) -> list[int]:
    """Append ``batch`` in order inside the caller's transaction; returns their ids (consecutive).

    Holds the chain lock until the caller commits or rolls back: call it late in the transaction."""
    return _append(conn, batch, None)


def _append(conn: Connection, batch: Sequence[AuditEvent], at: datetime | None) -> list[int]:
    """``append_many``; ``at`` backdates the events (imports, tests and benchmarks only)."""
    if not batch:
        return []
    encoded = [_check(e) for e in batch]
    last_id, prev, keyed_from = lock_head(conn)
    key = process_chain_key()
    now = at or datetime.now(UTC)
    ts = ts_text(now)
    # Driver-level executemany with tuples: this runs once per verdict the API stores, so no per-row
    # SQLAlchemy parameter processing. SQLite gets the text SQLAlchemy's DateTime would have written.
    stored_ts: Any = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else now
    rows: list[tuple] = []
    for i, (e, payload) in enumerate(zip(batch, encoded, strict=True), start=last_id + 1):
        body = payload.decode()
        h = event_hash(i, ts, e.actor, e.tenant_id, e.event_type, e.subject, body, prev)
        batch_ref, phone_ref = refs(e.subject, e.payload)
        rows.append((i, stored_ts, e.actor, e.tenant_id, e.event_type, e.subject, body, prev, h, batch_ref, phone_ref,
                     event_mac(key, h)))
        prev = h
    conn.exec_driver_sql(_INSERT_SQLITE if conn.dialect.name == "sqlite" else _INSERT_PG, rows)
    new_last = last_id + len(rows)
    conn.execute(
        text("UPDATE audit_head SET last_id = :i, last_hash = :h, mac = :m WHERE id = 1"),
        {"i": new_last, "h": prev, "m": head_mac(key, new_last, prev, keyed_from)},
    )
    return list(range(last_id + 1, new_last + 1))


def append(
    conn: Connection,
    *,
    event_type: str,
    actor: str,
    tenant_id: int | None,
    subject: str,
    payload: Mapping[str, Any],
) -> int:
    """Append one event inside the caller's open transaction and return its id."""
    [event_id] = append_many(
        conn, [AuditEvent(event_type=event_type, actor=actor, tenant_id=tenant_id, subject=subject, payload=payload)]
    )
    return event_id
