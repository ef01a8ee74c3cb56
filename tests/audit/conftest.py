"""Audit fixtures: a fresh, migrated database per test (tamper tests rewrite rows), on both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from smsguard.audit import AuditEvent
from smsguard.audit._chain import _append


@pytest.fixture
def fresh_db(backend) -> Iterator[Engine]:
    """A new empty database (SQLite file or PostgreSQL schema) migrated to every head. This process MACs its
    appends with the backend's signing key, the one ``smsguard`` subprocesses of the backend use."""
    from smsguard.audit import load_signing_key, use_signing_key
    from smsguard.storage import make_engine, migrate

    db = make_engine(backend.scratch_database_url().replace("postgresql://", "postgresql+psycopg://", 1))
    migrate(db)
    use_signing_key(load_signing_key(backend.data_dir))
    try:
        yield db
    finally:
        use_signing_key(None)
        db.dispose()


def fill(db: Engine, n: int, *, tenant_id: int | None = 1, at: datetime | None = None, chunk: int = 10_000,
         event_type: str = "verdict", payload: dict | None = None) -> None:
    """Append ``n`` small events in chunks of ``chunk`` per transaction (``at`` backdates them)."""
    done = 0
    while done < n:
        k = min(chunk, n - done)
        batch = [
            AuditEvent(event_type=event_type, actor="system:test", tenant_id=tenant_id, subject=f"verdict:v{done + i}",
                       payload=payload if payload is not None else {"decision": "pass", "i": done + i})
            for i in range(k)
        ]
        with db.begin() as conn:
            _append(conn, batch, at)
        done += k


@pytest.fixture
def filler() -> Callable[..., None]:
    return fill


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
