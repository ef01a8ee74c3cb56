"""Vendor credentials: a Tencent SecretId/SecretKey (+ SmsSdkAppId) or an Aliyun AccessKeyId/AccessKeySecret
that acts for one tenant on the vendor-compatible endpoints.

The secret is shown once, at creation, and stored encrypted with the deployment's phone encryption key (the
``PhoneVault``, AES-256-GCM), because checking an HMAC request signature needs the secret itself: a hash
would not do. ``smsguard keys rotate`` does not re-encrypt these; keep the old key configured (it still
decrypts) or create new credentials.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import string
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, insert, select

from smsguard import audit
from smsguard.core import NotFoundError, SmsguardError
from smsguard.phones import PhoneVault

from ._revoke import revoke
from ._tables import VENDORS, credentials, tenants

_ALNUM = string.ascii_letters + string.digits
log = logging.getLogger("smsguard.vendors")


@dataclasses.dataclass(frozen=True, slots=True)
class Credential:
    id: int
    tenant_id: int
    tenant: str
    vendor: str
    access_id: str
    secret: str = dataclasses.field(repr=False)
    app_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class CredentialListing:
    vendor: str
    access_id: str
    app_id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def _random(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def create_credential(
    db: Engine, vault: PhoneVault, tenant: str, vendor: str, *, label: str = "", app_id: str | None = None,
    actor: str = "cli",
) -> tuple[Credential, str]:
    """A new credential for ``tenant``; returns it and its secret (shown once)."""
    if vendor not in VENDORS:
        raise SmsguardError(f"vendor must be one of {', '.join(VENDORS)}", where="vendor", code="vendor.unknown")
    if vendor == "tencent":
        access_id, secret = "AKID" + _random(32), _random(32)
        app_id = app_id or "1400" + _random(6, string.digits)
    else:
        access_id, secret = "LTAI" + _random(20), _random(30)
        app_id = ""
    if (not app_id.isdigit() and vendor == "tencent") or len(app_id) > 32:
        raise SmsguardError("the SmsSdkAppId is up to 32 digits", where="app_id", code="vendor.app_id")
    at = datetime.now(UTC)
    with db.begin() as conn:
        row = conn.execute(select(tenants.c.id).where(tenants.c.name == tenant)).one_or_none()
        if row is None:
            raise NotFoundError(f"no tenant {tenant!r}", where="tenant", code="tenant.not_found")
        cid = conn.execute(
            insert(credentials)
            .values(tenant_id=row.id, vendor=vendor, access_id=access_id, secret_enc=vault.encrypt(secret),
                    app_id=app_id, label=label[:200], created_at=at)
            .returning(credentials.c.id)
        ).scalar_one()
        audit.append(conn, event_type="vendor.credential_created", actor=actor, tenant_id=row.id,
                     subject=f"vendor_credential:{cid}",
                     payload={"vendor": vendor, "access_id": access_id, "app_id": app_id, "label": label[:200]})
    return Credential(cid, row.id, tenant, vendor, access_id, secret, app_id), secret


def find_credential(db: Engine, vault: PhoneVault, vendor: str, access_id: str) -> Credential | None:
    """The live credential with this id (None when unknown, revoked, or another vendor's)."""
    if not access_id or len(access_id) > 64 or "\x00" in access_id:
        return None
    with db.connect() as conn:
        row = conn.execute(
            select(credentials, tenants.c.name.label("tenant"))
            .join(tenants, tenants.c.id == credentials.c.tenant_id)
            .where(credentials.c.access_id == access_id, credentials.c.vendor == vendor,
                   credentials.c.revoked_at.is_(None))
        ).one_or_none()
    if row is None:
        return None
    try:
        secret = vault.decrypt(row.secret_enc)
    except (InvalidTag, ValueError):  # encrypted under a key this deployment no longer has: as good as revoked
        log.error("vendor credential %s: its secret does not decrypt with the configured keys", row.access_id)
        return None
    return Credential(row.id, row.tenant_id, row.tenant, row.vendor, row.access_id, secret, row.app_id)


def list_credentials(db: Engine, tenant: str) -> list[CredentialListing]:
    with db.connect() as conn:
        rows = conn.execute(
            select(credentials).join(tenants, tenants.c.id == credentials.c.tenant_id)
            .where(tenants.c.name == tenant).order_by(credentials.c.id)
        ).all()
    return [CredentialListing(r.vendor, r.access_id, r.app_id, r.label, r.created_at, r.revoked_at) for r in rows]


def revoke_credential(db: Engine, access_id: str, *, actor: str = "cli") -> int:
    return revoke(db, credentials, credentials.c.access_id, access_id, event_type="vendor.credential_revoked",
                  subject="vendor_credential", actor=actor)
