"""Verdict rows and their ``verdict`` audit events, written in one transaction (the API's hot write path).

Here, not in storage: the rows are storage's, but what makes a verdict acknowledged is its audit event,
and audit's tables already stand on storage's metadata (storage importing audit back was a circle).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, Engine

from smsguard.phones import mask_phones_in
from smsguard.storage import VERDICT_COLUMNS

from ._chain import AuditEvent, append_many

AlsoWrite = Callable[[Connection, Sequence[Sequence[Any]]], None]


def insert_verdicts(
    db: Engine, rows: Sequence[Sequence[Any]], actors: Sequence[str] | None = None, *, also: AlsoWrite | None = None
) -> None:
    """Insert verdict rows (tuples in ``VERDICT_COLUMNS`` order, ``created_at`` an aware UTC datetime) and one
    ``verdict`` audit event per row (``actors[i]`` did row i; default ``api``) in one transaction. Plain DBAPI
    ``executemany`` for the rows: this is the hot write path, and both drivers batch it (sqlite3 in C,
    psycopg 3 in pipeline mode). ``also(conn, rows)`` runs in the same transaction, before the audit events."""
    if not rows:
        return
    sqlite = db.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    sql = f"INSERT INTO verdicts ({', '.join(VERDICT_COLUMNS)}) VALUES ({', '.join([mark] * len(VERDICT_COLUMNS))})"
    events = [
        AuditEvent(
            event_type="verdict",
            actor=actor,
            tenant_id=r[1],
            subject=f"verdict:{r[0]}",
            payload={
                "decision": r[5], "score": r[6], "content_hash": r[4], "policy": r[7], "lexicon": r[8], "model": r[9],
                "cached": bool(r[10]), "message_id": None if r[3] is None else mask_phones_in(r[3]),
            },
        )
        for r, actor in zip(rows, actors or ["api"] * len(rows), strict=True)
    ]
    if sqlite:  # stored the way SQLAlchemy's SQLite DateTime reads it back: naive UTC text
        rows = [(r[0], r[1], r[2].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), *r[3:]) for r in rows]
    with db.begin() as conn:
        conn.exec_driver_sql(sql, list(rows))
        if also is not None:
            also(conn, rows)
        append_many(conn, events)  # last: the chain lock is held from here to the commit
