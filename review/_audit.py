"""Audit events of review: reviewer actions (``review.<action>``, subject ``review:<item id>``) and logins and
logouts (``login`` / ``login.logout``, subject ``user:<id>``). ``audit.append`` writes inside the caller's
transaction, so an event commits exactly when what it records commits; it takes the chain lock, so callers
emit last, just before commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from smsguard import audit


def emit(conn: Connection, *, event_type: str, actor: str, tenant_id: int | None, subject: str,
         payload: dict[str, Any]) -> int:
    return audit.append(conn, event_type=event_type, actor=actor, tenant_id=tenant_id, subject=subject,
                        payload=payload)
