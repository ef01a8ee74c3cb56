"""Repository functions over the system of record: tenants, API keys, verdicts.

API keys are ``sg_`` + 43 URL-safe characters (32 random bytes). Only their SHA-256 is stored: the
keys are high-entropy random tokens, so a fast hash is the standard choice (a slow password hash
such as argon2 protects guessable secrets; it would add tens of milliseconds per uncached lookup here
for no gain). The first 12 characters are stored as ``prefix`` to find the row and to name the key in
listings; the full hash is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from smsguard.core import ConflictError, ForbiddenError, NotFoundError, SmsguardError

from ._models import ApiKey, Tenant, VerdictRecord

KEY_PREFIX = "sg_"
PREFIX_LEN = 12
_KEY_RE = re.compile(r"^sg_[A-Za-z0-9_-]{43}$")
_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
LOCAL_TENANT = "local"
ROLES = ("client", "admin", "auditor", "auditor_full")
"""What a key may do: screen (every role), reload (admin), read its tenant's audit log with numbers masked
(auditor) or every tenant's with numbers as stored (auditor_full)."""


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: int
    name: str
    rate_limit: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a verified API key grants: its tenant, that tenant's rate limit, admin rights."""

    key_id: int
    prefix: str
    tenant_id: int
    tenant: str
    rate_limit: int | None
    admin: bool
    role: str = "client"


@dataclass(frozen=True, slots=True)
class KeyListing:
    prefix: str
    label: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None
    role: str = "client"


def now() -> datetime:
    return datetime.now(UTC)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_tenant(db: Engine, name: str, *, rate_limit: int | None = None) -> TenantInfo:
    if not _TENANT_RE.match(name):
        raise SmsguardError(
            "tenant name: 1-64 of a-z 0-9 _ . - starting with a letter or digit", where="name", code="tenant.name"
        )
    if rate_limit is not None and rate_limit < 1:
        raise SmsguardError("rate limit must be at least 1", where="rate_limit", code="tenant.rate_limit")
    try:
        with db.begin() as conn:
            row = conn.execute(
                insert(Tenant.__table__)
                .values(name=name, rate_limit=rate_limit, created_at=now())
                .returning(*Tenant.__table__.c)
            ).one()
    except IntegrityError:
        raise ConflictError(f"tenant {name!r} exists", where="name", code="tenant.exists") from None
    return TenantInfo(id=row.id, name=row.name, rate_limit=row.rate_limit, created_at=row.created_at)


def get_tenant(db: Engine, name: str) -> TenantInfo:
    with db.connect() as conn:
        row = conn.execute(select(Tenant.__table__).where(Tenant.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"no tenant {name!r}", where="tenant", code="tenant.not_found")
    return TenantInfo(id=row.id, name=row.name, rate_limit=row.rate_limit, created_at=row.created_at)


def list_tenants(db: Engine) -> list[TenantInfo]:
    with db.connect() as conn:
        rows = conn.execute(select(Tenant.__table__).order_by(Tenant.id)).all()
    return [TenantInfo(id=r.id, name=r.name, rate_limit=r.rate_limit, created_at=r.created_at) for r in rows]


def set_rate_limit(db: Engine, name: str, rate_limit: int | None) -> TenantInfo:
    if rate_limit is not None and rate_limit < 1:
        raise SmsguardError("rate limit must be at least 1", where="rate_limit", code="tenant.rate_limit")
    with db.begin() as conn:
        done = conn.execute(update(Tenant).where(Tenant.name == name).values(rate_limit=rate_limit)).rowcount
    if not done:
        raise NotFoundError(f"no tenant {name!r}", where="tenant", code="tenant.not_found")
    return get_tenant(db, name)


def create_key(
    db: Engine, tenant: str, *, label: str = "", admin: bool = False, role: str | None = None,
    within: Callable[[Connection, int, KeyListing], None] | None = None,
) -> tuple[str, KeyListing]:
    """A new key for ``tenant``: the plain key (show it once, it is not stored) and its listing. ``admin=True``
    is ``role="admin"``. ``within(conn, key_id, listing)`` runs in the same transaction (an audit event)."""
    role = role or ("admin" if admin else "client")
    if role not in ROLES:
        raise SmsguardError(f"role must be one of {', '.join(ROLES)}", where="role", code="key.role")
    admin = role == "admin"
    t = get_tenant(db, tenant)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    created = now()
    listing = KeyListing(key[:PREFIX_LEN], label, admin, created, None, role)
    with db.begin() as conn:
        key_id = conn.execute(
            insert(ApiKey.__table__).values(
                tenant_id=t.id,
                prefix=key[:PREFIX_LEN],
                key_hash=hash_key(key),
                label=label,
                admin=admin,
                role=role,
                created_at=created,
            ).returning(ApiKey.id)
        ).scalar_one()
        if within is not None:
            within(conn, key_id, listing)
    return key, listing


def list_keys(db: Engine, tenant: str) -> list[KeyListing]:
    t = get_tenant(db, tenant)
    with db.connect() as conn:
        rows = conn.execute(select(ApiKey.__table__).where(ApiKey.tenant_id == t.id).order_by(ApiKey.id)).all()
    return [KeyListing(r.prefix, r.label, r.admin, r.created_at, r.revoked_at, r.role) for r in rows]


def tenant_keys(db: Engine, tenant_id: int) -> list[dict[str, Any]]:
    """A tenant's keys by id (newest first): prefix, label, role, created and revoked times; never the hash."""
    with db.connect() as conn:
        rows = conn.execute(select(ApiKey.__table__).where(ApiKey.tenant_id == tenant_id)
                            .order_by(ApiKey.id.desc())).all()
    return [{"id": r.id, "prefix": r.prefix, "label": r.label, "role": r.role, "created_at": _utc(r.created_at),
             "revoked_at": _utc(r.revoked_at), "last_used_at": _utc(r.last_used_at)} for r in rows]


TOUCH_EVERY = 60.0
"""Seconds between two writes of a key's ``last_used_at``: a busy key costs one UPDATE a minute, not one a call."""


def touch_key(db: Engine, key_id: int, at: datetime | None = None) -> bool:
    """Record that key ``key_id`` was used at ``at`` (now), unless that was already recorded less than
    ``TOUCH_EVERY`` seconds before; returns whether it wrote."""
    at = at or now()
    with db.begin() as conn:
        done = conn.execute(
            update(ApiKey).where(ApiKey.id == key_id, (ApiKey.last_used_at.is_(None))
                                 | (ApiKey.last_used_at < at - timedelta(seconds=TOUCH_EVERY)))
            .values(last_used_at=at)
        ).rowcount
    return bool(done)


def revoke_tenant_key(
    db: Engine, tenant_id: int, key_id: int, *, roles: tuple[str, ...] = ROLES,
    within: Callable[[Connection, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Revoke key ``key_id`` of ``tenant_id`` (another tenant's key is not found) if its role is in ``roles``;
    ``within(conn, key)`` runs in the same transaction. Revoking a revoked key is an error (``key.revoked``)."""
    with db.begin() as conn:
        row = conn.execute(select(ApiKey.__table__).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
                           .with_for_update()).one_or_none()
        if row is None:
            raise NotFoundError(f"no key {key_id}", where="path key_id", code="key.not_found")
        if row.role not in roles:
            raise ForbiddenError(f"a {row.role} key is managed by the operator (smsguard key revoke)",
                                 where="path key_id", code="key.role")
        if row.revoked_at is not None:
            raise ConflictError(f"key {row.prefix} is already revoked", where="path key_id", code="key.revoked")
        at = now()
        conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=at))
        out = {"id": row.id, "prefix": row.prefix, "label": row.label, "role": row.role,
               "created_at": _utc(row.created_at), "revoked_at": at, "last_used_at": _utc(row.last_used_at)}
        if within is not None:
            within(conn, out)
    return out


def _utc(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=UTC)


def revoke_key(db: Engine, prefix: str) -> int:
    """Revoke every live key starting with ``prefix`` (at least the 12 listed characters); returns how many."""
    if len(prefix) < PREFIX_LEN:
        raise SmsguardError(f"give the key's first {PREFIX_LEN} characters", where="prefix", code="key.prefix")
    with db.begin() as conn:
        rows = conn.execute(
            select(ApiKey.id, ApiKey.key_hash).where(ApiKey.prefix == prefix[:PREFIX_LEN], ApiKey.revoked_at.is_(None))
        ).all()
        ids = [r.id for r in rows if len(prefix) == PREFIX_LEN or hmac.compare_digest(r.key_hash, hash_key(prefix))]
        if ids:
            conn.execute(update(ApiKey).where(ApiKey.id.in_(ids)).values(revoked_at=now()))
    return len(ids)


def find_key(db: Engine, key: str) -> KeyInfo | None:
    """The live key ``key`` names, or None (malformed, unknown or revoked)."""
    if not _KEY_RE.match(key):
        return None
    digest = hash_key(key)
    with db.connect() as conn:
        rows = conn.execute(
            select(
                ApiKey.id, ApiKey.prefix, ApiKey.key_hash, ApiKey.admin, Tenant.id, Tenant.name, Tenant.rate_limit,
                ApiKey.role,
            )
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.prefix == key[:PREFIX_LEN], ApiKey.revoked_at.is_(None))
        ).all()
    for key_id, prefix, key_hash, admin, tenant_id, tenant, rate_limit, role in rows:
        if hmac.compare_digest(key_hash, digest):
            return KeyInfo(key_id, prefix, tenant_id, tenant, rate_limit, admin, role)
    return None


def ensure_local_tenant(db: Engine) -> str | None:
    """On a database with no tenant at all: create tenant ``local`` with an admin key and return the key
    (to print once). Returns None when any tenant exists."""
    with db.connect() as conn:
        if conn.execute(select(Tenant.id).limit(1)).first() is not None:
            return None
    try:
        create_tenant(db, LOCAL_TENANT)
    except ConflictError:  # another process won the race
        return None
    key, _ = create_key(db, LOCAL_TENANT, label="created on first start", admin=True)
    return key


# -- verdicts ----------------------------------------------------------------------------------
VERDICT_COLUMNS = (
    "id",
    "tenant_id",
    "created_at",
    "message_id",
    "content_hash",
    "decision",
    "score",
    "policy_version",
    "lexicon_version",
    "model_version",
    "cached",
    "text",
    "verdict",
)


def get_verdict(db: Engine, tenant_id: int, verdict_id: str) -> Any | None:
    """The row of verdict ``verdict_id`` if it belongs to ``tenant_id``; another tenant's is None."""
    with db.connect() as conn:
        return conn.execute(
            select(VerdictRecord.__table__).where(VerdictRecord.id == verdict_id, VerdictRecord.tenant_id == tenant_id)
        ).one_or_none()


def count_verdicts(db: Engine, tenant_id: int | None = None) -> int:
    q = select(func.count()).select_from(VerdictRecord.__table__)
    if tenant_id is not None:
        q = q.where(VerdictRecord.tenant_id == tenant_id)
    with db.connect() as conn:
        return int(conn.execute(q).scalar_one())
