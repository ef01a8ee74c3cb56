"""Console accounts: bound to one tenant, argon2id password hashes, roles ``customer`` and ``viewer``.

Mirrors ``review._users`` (same hasher parameters, same constant-time behaviour for unknown names) on the
console's own table; see ``console._tables`` for why the two account kinds are kept apart.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine import SmsguardError

from ._tables import ROLES, console_tenants, console_users, tenants

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,63}$")
MIN_PASSWORD = 8
DEFAULT_TIME_ZONE = "Asia/Shanghai"

_hasher = PasswordHasher()
# Verified against when the user does not exist: an unknown name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class ConsoleUserError(SmsguardError):
    code = "console.user"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: int
    username: str
    tenant_id: int
    tenant: str
    role: str
    time_zone: str = DEFAULT_TIME_ZONE
    """The tenant's zone (``console_tenants``): schedule pickers and pages show local times in it."""

    @property
    def can_write(self) -> bool:
        """May create templates, upload lists and compose batches (``viewer`` only reads)."""
        return self.role == "customer"


def _tenant_id(db: Engine, tenant: str) -> int:
    with db.connect() as conn:
        tid = conn.execute(select(tenants.c.id).where(tenants.c.name == tenant)).scalar_one_or_none()
    if tid is None:
        raise ConsoleUserError(f"no tenant {tenant!r} (smsguard tenant create {tenant})", where="tenant",
                               code="tenant.not_found")
    return tid


def create_user(db: Engine, username: str, password: str, *, tenant: str, role: str = "customer") -> ConsoleUser:
    if not _USERNAME.match(username):
        raise ConsoleUserError("2-64 of a-z 0-9 _ . @ - starting with a letter or digit", where="username")
    if role not in ROLES:
        raise ConsoleUserError(f"one of {', '.join(ROLES)}", where="role")
    if len(password) < MIN_PASSWORD:
        raise ConsoleUserError(f"at least {MIN_PASSWORD} characters", where="password")
    tid = _tenant_id(db, tenant)
    try:
        with db.begin() as conn:
            uid = conn.execute(
                insert(console_users)
                .values(username=username, password_hash=_hasher.hash(password), tenant_id=tid, role=role,
                        created_at=datetime.now(UTC))
                .returning(console_users.c.id)
            ).scalar_one()
    except IntegrityError:
        raise ConsoleUserError(f"user {username!r} exists", where="username", code="console.user_exists") from None
    return ConsoleUser(uid, username, tid, tenant, role)


def set_password(db: Engine, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConsoleUserError(f"at least {MIN_PASSWORD} characters", where="password")
    with db.begin() as conn:
        done = conn.execute(
            update(console_users).where(console_users.c.username == username)
            .values(password_hash=_hasher.hash(password))
        ).rowcount
    if not done:
        raise ConsoleUserError(f"no user {username!r}", where="username", code="console.user_not_found")


def _select():
    return (
        select(console_users, tenants.c.name.label("tenant_name"), console_tenants.c.time_zone)
        .join(tenants, tenants.c.id == console_users.c.tenant_id)
        .outerjoin(console_tenants, console_tenants.c.tenant_id == console_users.c.tenant_id)
    )


def _user(row) -> ConsoleUser:
    return ConsoleUser(row.id, row.username, row.tenant_id, row.tenant_name, row.role,
                       row.time_zone or DEFAULT_TIME_ZONE)


def authenticate(db: Engine, username: str, password: str) -> ConsoleUser | None:
    """The user if ``password`` is theirs and the account is enabled, else None."""
    with db.connect() as conn:
        row = conn.execute(_select().where(console_users.c.username == username)).one_or_none()
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        with db.begin() as conn:
            conn.execute(
                update(console_users).where(console_users.c.id == row.id).values(password_hash=_hasher.hash(password))
            )
    return _user(row)


def get_user(db: Engine, user_id: int) -> ConsoleUser | None:
    with db.connect() as conn:
        row = conn.execute(
            _select().where(console_users.c.id == user_id, console_users.c.disabled_at.is_(None))
        ).one_or_none()
    return None if row is None else _user(row)


def list_users(db: Engine) -> list[tuple[ConsoleUser, datetime | None]]:
    with db.connect() as conn:
        rows = conn.execute(_select().order_by(console_users.c.id)).all()
    return [(_user(r), r.disabled_at) for r in rows]


def disable_user(db: Engine, username: str) -> None:
    with db.begin() as conn:
        done = conn.execute(
            update(console_users).where(console_users.c.username == username).values(disabled_at=datetime.now(UTC))
        ).rowcount
    if not done:
        raise ConsoleUserError(f"no user {username!r}", where="username", code="console.user_not_found")


def tenant_time_zone(db: Engine, tenant_id: int, default: str = DEFAULT_TIME_ZONE) -> str:
    with db.connect() as conn:
        tz = conn.execute(
            select(console_tenants.c.time_zone).where(console_tenants.c.tenant_id == tenant_id)
        ).scalar_one_or_none()
    return tz or default


def set_time_zone(db: Engine, tenant: str, time_zone: str) -> None:
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConsoleUserError(f"unknown time zone {time_zone!r} (an IANA name such as Asia/Shanghai)",
                               where="time_zone", code="console.time_zone") from None
    tid = _tenant_id(db, tenant)
    at = datetime.now(UTC)
    with db.begin() as conn:
        if not conn.execute(
            update(console_tenants).where(console_tenants.c.tenant_id == tid).values(time_zone=time_zone, updated_at=at)
        ).rowcount:
            conn.execute(insert(console_tenants).values(tenant_id=tid, time_zone=time_zone, updated_at=at))
