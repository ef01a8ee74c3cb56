"""A tenant's webhook endpoints: create, read, change, delete, rotate the secret. Every change is one
transaction with its audit event; another tenant's endpoint is "not found" (the API answers 404).

The secret is shown when it is created (and on rotation), never again. It is stored as is: signing needs
it, as a receiver's verification does. Rotation keeps the previous secret valid for a grace period, during
which requests carry both signatures.
"""

from __future__ import annotations

import json
import secrets as _random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, func, select, update

from smsguard import audit
from smsguard.core import ConflictError, InputError, NotFoundError

from ._outbox import EVENT_TYPES
from ._tables import deliveries, endpoints

DEFAULT_GRACE = 24 * 3600.0
MAX_GRACE = 7 * 24 * 3600.0
MAX_ENDPOINTS = 20  # per tenant


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt)


def new_secret() -> str:
    return "whsec_" + _random.token_urlsafe(32)


def check_url(url: str, where: str = "$.url") -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is no number (or out of range) is a ValueError
    except ValueError:
        raise InputError("must be an http:// or https:// URL with a host", where=where, code="webhooks.url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("must be an http:// or https:// URL with a host", where=where, code="webhooks.url")
    if parts.username or parts.password:
        raise InputError("must not carry credentials (the signature authenticates us)", where=where,
                         code="webhooks.url")
    return url


def check_event_types(types: list[str], where: str = "$.events") -> list[str]:
    if not types:
        raise InputError("subscribe to at least one event type (or \"*\")", where=where, code="webhooks.events")
    for i, t in enumerate(types):
        if t != "*" and t not in EVENT_TYPES:
            raise InputError(f"unknown event type {t!r}; types are {', '.join(EVENT_TYPES)} or *",
                             where=f"{where}[{i}]", code="webhooks.events")
    return sorted(set(types))


def view(row: Any, *, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": row.id,
        "url": row.url,
        "events": json.loads(row.event_types),
        "description": row.description,
        "enabled": bool(row.enabled),
        "max_concurrency": row.max_concurrency,
        "timeout": row.timeout,
        "previous_secret_valid_until": _iso(row.old_secret_until) if _old_secret_live(row) else None,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def _iso(dt: datetime | None) -> str | None:
    dt = _aware(dt)
    return dt.isoformat() if dt else None


def _old_secret_live(row: Any, at: datetime | None = None) -> bool:
    until = _aware(row.old_secret_until)
    return bool(row.old_secret) and until is not None and until > (at or _now())


def signing_secrets(row: Any, at: datetime | None = None) -> list[str]:
    """The secrets a request is signed with now: the current one, plus the previous one during its grace."""
    return [row.secret, row.old_secret] if _old_secret_live(row, at) else [row.secret]


def load(conn: Connection, tenant_id: int, endpoint_id: int, *, for_update: bool = False) -> Any:
    q = select(endpoints).where(endpoints.c.id == endpoint_id, endpoints.c.tenant_id == tenant_id,
                                endpoints.c.deleted_at.is_(None))
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).one_or_none()
    if row is None:
        raise NotFoundError(f"webhook {endpoint_id} not found", where="path webhook_id", code="webhooks.not_found")
    return row


def create_endpoint(db: Engine, tenant_id: int, *, url: str, events: list[str], description: str = "",
                    enabled: bool = True, max_concurrency: int = 4, timeout: float = 10.0,
                    actor: str) -> dict[str, Any]:
    url, types = check_url(url), check_event_types(events)
    secret, t = new_secret(), _now()
    with db.begin() as conn:
        count = conn.execute(select(func.count()).select_from(endpoints).where(
            endpoints.c.tenant_id == tenant_id, endpoints.c.deleted_at.is_(None))).scalar_one()
        if count >= MAX_ENDPOINTS:
            # 409: the body is fine, the tenant's endpoints are not (delete one first)
            raise ConflictError(f"at most {MAX_ENDPOINTS} webhooks per tenant: delete one first", where="$",
                                code="webhooks.too_many")
        eid = conn.execute(endpoints.insert().values(
            tenant_id=tenant_id, url=url, event_types=json.dumps(types), description=description, secret=secret,
            enabled=enabled, max_concurrency=max_concurrency, timeout=timeout, created_at=t, updated_at=t,
        )).inserted_primary_key[0]
        audit.append(conn, event_type="webhook.created", actor=actor, tenant_id=tenant_id, subject=f"webhook:{eid}",
                     payload={"webhook_id": eid, "url": url, "events": types, "enabled": enabled})
        return view(load(conn, tenant_id, eid), secret=secret)


def list_endpoints(db: Engine, tenant_id: int) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(select(endpoints).where(endpoints.c.tenant_id == tenant_id,
                                                    endpoints.c.deleted_at.is_(None)).order_by(endpoints.c.id))
        return [view(r) for r in rows]


def get_endpoint(db: Engine, tenant_id: int, endpoint_id: int) -> dict[str, Any]:
    with db.connect() as conn:
        return view(load(conn, tenant_id, endpoint_id))


def update_endpoint(db: Engine, tenant_id: int, endpoint_id: int, *, actor: str, **changes: Any) -> dict[str, Any]:
    """Change any of url, events, description, enabled, max_concurrency, timeout (None: unchanged)."""
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name == "url":
            values["url"] = check_url(value)
        elif name == "events":
            values["event_types"] = json.dumps(check_event_types(value))
        else:
            values[name] = value
    with db.begin() as conn:
        load(conn, tenant_id, endpoint_id, for_update=True)
        if values:
            conn.execute(update(endpoints).where(endpoints.c.id == endpoint_id).values(**values, updated_at=_now()))
            shown = {k: (json.loads(v) if k == "event_types" else v) for k, v in values.items()}
            audit.append(conn, event_type="webhook.updated", actor=actor, tenant_id=tenant_id,
                         subject=f"webhook:{endpoint_id}", payload={"webhook_id": endpoint_id, **shown})
        return view(load(conn, tenant_id, endpoint_id))


def delete_endpoint(db: Engine, tenant_id: int, endpoint_id: int, *, actor: str) -> dict[str, Any]:
    """Stop sending to it; its pending deliveries are cancelled, its log stays readable."""
    t = _now()
    with db.begin() as conn:
        load(conn, tenant_id, endpoint_id, for_update=True)
        conn.execute(update(endpoints).where(endpoints.c.id == endpoint_id).values(deleted_at=t, updated_at=t))
        cancelled = conn.execute(update(deliveries).where(
            deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending",
        ).values(status="cancelled", finished_at=t, lease_owner=None, lease_until=None)).rowcount
        audit.append(conn, event_type="webhook.deleted", actor=actor, tenant_id=tenant_id,
                     subject=f"webhook:{endpoint_id}", payload={"webhook_id": endpoint_id, "cancelled": cancelled})
    return {"id": endpoint_id, "deleted": True, "cancelled_deliveries": cancelled}


def rotate_secret(db: Engine, tenant_id: int, endpoint_id: int, *, grace: float = DEFAULT_GRACE,
                  actor: str) -> dict[str, Any]:
    """A new secret, shown once; the current one stays accepted (both signatures sent) for ``grace`` s."""
    if not 0 <= grace <= MAX_GRACE:
        raise InputError(f"grace must be 0..{MAX_GRACE:.0f} seconds", where="$.grace_seconds", code="webhooks.grace")
    secret, t = new_secret(), _now()
    with db.begin() as conn:
        row = load(conn, tenant_id, endpoint_id, for_update=True)
        conn.execute(update(endpoints).where(endpoints.c.id == endpoint_id).values(
            secret=secret, old_secret=row.secret if grace else None,
            old_secret_until=t + timedelta(seconds=grace) if grace else None, updated_at=t))
        audit.append(conn, event_type="webhook.secret_rotated", actor=actor, tenant_id=tenant_id,
                     subject=f"webhook:{endpoint_id}", payload={"webhook_id": endpoint_id, "grace_seconds": grace})
        return view(load(conn, tenant_id, endpoint_id), secret=secret)
