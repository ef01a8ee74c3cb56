"""The batch life cycle: its states, the one way to move between them, and money in micros.

Life cycle (``batches.state``; every transition is an audit event ``batch.<state>`` on ``batch:<id>``)::

    draft ─submit─► screening ─► review ─(every content decided)─► approved ─► scheduled ─► releasing ─► sending
      ▲                 │           │                                                      (release worker)   │
      │                 │           │                               every recipient final (report relay) ─► done
      └─budget exceeded─┘           └──────────────► cancelled ◄─ cancel (before hand-over, or deferred)

A transition also settles the prepaid hold of a batch that is over (``_billing.on_state``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from smsguard import audit
from smsguard.core import NotFoundError

from . import _billing
from ._common import now
from ._tables import batches

CANCELLABLE = ("draft", "screening", "review", "approved", "scheduled")
SENDABLE_REVIEW = ("none", "approved")


def micros(amount: float) -> int:
    return round(amount * 1_000_000)


def money(m: int) -> str:
    return f"{m / 1_000_000:.4f}"



def _transition(
    conn: Connection,
    batch: Any,
    to: str,
    actor: str,
    *,
    frm: Iterable[str],
    payload: dict[str, Any] | None = None,
    when: Any = None,
    **values: Any,
) -> bool:
    """Move ``batch`` from one of ``frm`` to ``to`` (setting ``values`` too) and audit it, in ``conn``'s
    transaction; ``payload`` adds to the event, ``when`` is one more SQL condition on the batch row. False when
    the batch was no longer in ``frm`` (or ``when`` no longer held)."""
    stmt = update(batches).where(batches.c.id == batch.id, batches.c.state.in_(tuple(frm)))
    if when is not None:
        stmt = stmt.where(when)
    done = conn.execute(stmt.values(state=to, updated_at=now(), **values)).rowcount
    if done:
        event = {"batch_id": batch.id, "from": batch.state if hasattr(batch, "state") else None, "to": to}
        event.update(
            {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in values.items()
                if k in ("reason", "schedule_at", "estimate_micros", "total")
            }
        )
        event.update(payload or {})
        audit.append(
            conn,
            event_type=f"batch.{to}",
            actor=actor,
            tenant_id=batch.tenant_id,
            subject=f"batch:{batch.id}",
            payload=event,
        )
        _billing.on_state(conn, batch, to, actor)  # a batch that is over settles its prepaid hold
    return bool(done)


def _load(conn: Connection, tenant_id: int | None, batch_id: int) -> Any:
    q = select(batches).where(batches.c.id == batch_id)
    if tenant_id is not None:
        q = q.where(batches.c.tenant_id == tenant_id)
    row = conn.execute(q).one_or_none()
    if row is None:
        raise NotFoundError(f"no batch {batch_id}", where="path batch_id", code="batch.not_found")
    return row
