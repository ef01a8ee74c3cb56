"""``emit``: one event into the outbox, inside the transaction of the change it reports.

The event and one pending delivery per subscribed endpoint are inserted with the caller's connection, so
they commit (or roll back) with the change: an event is never announced for a change that did not happen,
nor lost for one that did. An event no endpoint of the tenant subscribes to is not stored (delivery
reports are the hot path, and most tenants poll): the id is still returned.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from smsguard.core import InputError

from ._tables import deliveries, endpoints, events

EVENT_TYPES = (
    "message.delivered",
    "message.failed",
    "mo.received",
    "optout.added",
    "optout.removed",
    "review.decided",
    "template.status",
    "signature.status",
    "signature.channel",
    "budget.low",
    "budget.exceeded",
    "pumping.blocked",  # pumping/: an automatic block tripped by this tenant's traffic
)
"""The types emitted today; an endpoint subscribes to some of them, or to ``*``."""


def subscribed(event_types_json: str, event_type: str) -> bool:
    wanted = json.loads(event_types_json)
    return "*" in wanted or event_type in wanted


def emit(conn: Connection, *, tenant_id: int, event_type: str, subject: str, payload: dict,
         endpoints_seen: dict[int, list[Any]] | None = None) -> str:
    """Write an event to the outbox in ``conn``'s transaction; returns its id (``evt_…``), the key receivers
    deduplicate on: every delivery and re-delivery of this event carries it (``X-Smsguard-Event-Id``).

    ``subject`` orders delivery: events with the same subject reach an endpoint one after the other, in
    emission order (``message:<batch>:<seq>``, ``phone:<keyed hash>``, …). ``payload`` must be
    JSON-serializable and hold no plain phone number (mask it).

    ``endpoints_seen``: a dict the caller keeps for one transaction that emits many events (the relay's
    batches of delivery reports), so each tenant's endpoints are read once, not once per event."""
    if not event_type or len(event_type) > 64:
        raise InputError("event_type must be 1..64 characters", where="event_type", code="webhooks.event_type")
    event_id = f"evt_{uuid.uuid4().hex}"
    if not tenant_id:  # platform-wide changes (tenant 0) have no tenant endpoint to tell
        return event_id
    rows = None if endpoints_seen is None else endpoints_seen.get(tenant_id)
    if rows is None:
        rows = list(conn.execute(
            select(endpoints.c.id, endpoints.c.event_types).where(
                endpoints.c.tenant_id == tenant_id, endpoints.c.deleted_at.is_(None), endpoints.c.enabled.is_(True)
            )
        ))
        if endpoints_seen is not None:
            endpoints_seen[tenant_id] = rows
    targets = [row.id for row in rows if subscribed(row.event_types, event_type)]
    if not targets:
        return event_id
    t = datetime.now(UTC)
    seq = conn.execute(
        insert(events).values(
            event_id=event_id, tenant_id=tenant_id, event_type=event_type, subject=subject[:200],
            payload=json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str), created_at=t,
        )
    ).inserted_primary_key[0]
    conn.execute(insert(deliveries), [_pending(seq, ep, tenant_id, subject, t) for ep in targets])
    return event_id


def _pending(seq: int, endpoint_id: int, tenant_id: int, subject: str, t: datetime) -> dict[str, Any]:
    return {"event_seq": seq, "endpoint_id": endpoint_id, "tenant_id": tenant_id, "subject": subject[:200],
            "status": "pending", "attempts": 0, "next_at": t, "created_at": t}
