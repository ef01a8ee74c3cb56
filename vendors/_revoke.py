"""Revoking a credential row (a vendor SecretId/AccessKey, a CMPP account): stamped, never deleted, audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Engine, Table, select, update

from smsguard import audit


def revoke(db: Engine, table: Table, by: Column, value: str, *, event_type: str, subject: str, actor: str) -> int:
    """Set ``revoked_at`` on the live row of ``table`` whose ``by`` is ``value`` and record ``event_type`` about
    ``<subject>:<id>`` (payload: ``{by: value}``), in one transaction; 1 when a row was revoked, 0 when none was."""
    with db.begin() as conn:
        row: Any = conn.execute(
            select(table.c.id, table.c.tenant_id).where(by == value, table.c.revoked_at.is_(None))
        ).one_or_none()
        if row is None:
            return 0
        conn.execute(update(table).where(table.c.id == row.id).values(revoked_at=datetime.now(UTC)))
        audit.append(
            conn,
            event_type=event_type,
            actor=actor,
            tenant_id=row.tenant_id,
            subject=f"{subject}:{row.id}",
            payload={by.name: value},
        )
    return 1
