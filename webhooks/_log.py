"""The delivery log (deliveries with their attempts), dead letters and manual re-sends, per tenant."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, insert, select

from smsguard import audit
from smsguard.core import InputError, NotFoundError

from ._endpoints import _iso, _now, load
from ._tables import attempts, deliveries, endpoints, events

DELIVERY_STATUSES = ("pending", "delivered", "dead", "cancelled")


def _delivery_rows(conn: Any, cond: list[Any], after: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(deliveries, events.c.event_id, events.c.event_type)
        .join(events, events.c.seq == deliveries.c.event_seq)
        .where(*cond, deliveries.c.id > after)
        .order_by(deliveries.c.id)
        .limit(limit)
    ).all()
    tries: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if rows:
        for a in conn.execute(select(attempts).where(attempts.c.delivery_id.in_([r.id for r in rows]))
                              .order_by(attempts.c.id)):
            tries[a.delivery_id].append({"attempt": a.attempt, "at": _iso(a.at), "status_code": a.status_code,
                                         "latency_ms": round(a.latency_ms, 1), "error": a.error})
    return [{
        "id": r.id, "webhook_id": r.endpoint_id, "event_id": r.event_id, "event_type": r.event_type,
        "subject": r.subject, "status": r.status, "attempts": r.attempts,
        "next_attempt_at": _iso(r.next_at) if r.status == "pending" else None,
        "last_status_code": r.last_status, "last_latency_ms": r.last_latency_ms and round(r.last_latency_ms, 1),
        "last_error": r.last_error, "created_at": _iso(r.created_at), "finished_at": _iso(r.finished_at),
        "attempt_log": tries.get(r.id, []),
    } for r in rows]


def list_deliveries(db: Engine, tenant_id: int, endpoint_id: int, *, status: str | None = None,
                    event_id: str | None = None, after: int = 0, limit: int = 100) -> dict[str, Any]:
    if status is not None and status not in DELIVERY_STATUSES:
        raise InputError(f"status must be one of {', '.join(DELIVERY_STATUSES)}", where="query status",
                         code="webhooks.status")
    with db.connect() as conn:
        row = conn.execute(select(endpoints.c.id).where(endpoints.c.id == endpoint_id,
                                                        endpoints.c.tenant_id == tenant_id)).one_or_none()
        if row is None:  # a deleted endpoint's log stays readable
            raise NotFoundError(f"webhook {endpoint_id} not found", where="path webhook_id",
                                code="webhooks.not_found")
        cond = [deliveries.c.endpoint_id == endpoint_id, deliveries.c.tenant_id == tenant_id]
        if status:
            cond.append(deliveries.c.status == status)
        if event_id:
            cond.append(events.c.event_id == event_id)
        out = _delivery_rows(conn, cond, after, limit)
    return {"deliveries": out, "next_after": out[-1]["id"] if len(out) == limit else None}


def list_dead_letters(db: Engine, tenant_id: int, *, after: int = 0, limit: int = 100) -> dict[str, Any]:
    """Deliveries given up after the retry window, across the tenant's endpoints (re-send them by event id)."""
    with db.connect() as conn:
        out = _delivery_rows(conn, [deliveries.c.tenant_id == tenant_id, deliveries.c.status == "dead"], after, limit)
    return {"deliveries": out, "next_after": out[-1]["id"] if len(out) == limit else None}


def get_event(db: Engine, tenant_id: int, event_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute(select(events).where(events.c.event_id == event_id,
                                                events.c.tenant_id == tenant_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"event {event_id} not found", where="path event_id", code="webhooks.event_not_found")
    return {"id": row.event_id, "type": row.event_type, "subject": row.subject, "created_at": _iso(row.created_at),
            "data": json.loads(row.payload)}


def resend_event(db: Engine, tenant_id: int, event_id: str, *, endpoint_id: int | None = None,
                 actor: str) -> dict[str, Any]:
    """Deliver an event again (same event id) to one endpoint, or to every live endpoint it went to before.
    A new delivery with a fresh retry window, after anything still pending for the same subject."""
    t = _now()
    with db.begin() as conn:
        ev = conn.execute(select(events).where(events.c.event_id == event_id,
                                               events.c.tenant_id == tenant_id)).one_or_none()
        if ev is None:
            raise NotFoundError(f"event {event_id} not found", where="path event_id", code="webhooks.event_not_found")
        if endpoint_id is not None:
            targets = [load(conn, tenant_id, endpoint_id).id]
        else:
            targets = [r.endpoint_id for r in conn.execute(
                select(deliveries.c.endpoint_id).distinct()
                .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
                .where(deliveries.c.event_seq == ev.seq, endpoints.c.deleted_at.is_(None))
                .order_by(deliveries.c.endpoint_id))]
        if not targets:
            raise InputError("every webhook this event went to is deleted: name one with webhook_id",
                             where="$.webhook_id", code="webhooks.no_target")
        ids = [conn.execute(insert(deliveries).values(
            event_seq=ev.seq, endpoint_id=ep, tenant_id=tenant_id, subject=ev.subject, status="pending", attempts=0,
            next_at=t, created_at=t)).inserted_primary_key[0] for ep in targets]
        audit.append(conn, event_type="webhook.resent", actor=actor, tenant_id=tenant_id, subject=f"event:{event_id}",
                     payload={"event_id": event_id, "webhooks": targets, "deliveries": ids})
    made = [{"id": i, "webhook_id": ep} for i, ep in zip(ids, targets, strict=True)]
    return {"event_id": event_id, "deliveries": made}
