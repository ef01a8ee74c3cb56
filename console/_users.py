"""Console accounts: bound to one tenant, argon2id password hashes, roles ``customer`` and ``viewer``.

Storage, hashing and log-in are ``webauth``'s, shared with the reviewer accounts (same hasher parameters, same
constant-time behaviour for unknown names), on the console's own table; see ``console._tables`` for why the
two account kinds are kept apart. The tenant and its time zone are the console's.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, Select, insert, select, update

from smsguard.core import SmsguardError
from smsguard.webauth import MIN_PASSWORD, Accounts, AccountsConfig

from ._tables import ROLES, console_tenants, console_users, tenants

DEFAULT_TIME_ZONE = "Asia/Shanghai"


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


def _select() -> Select[Any]:
    return (
        select(console_users, tenants.c.name.label("tenant_name"), console_tenants.c.time_zone)
        .join(tenants, tenants.c.id == console_users.c.tenant_id)
        .outerjoin(console_tenants, console_tenants.c.tenant_id == console_users.c.tenant_id)
    )


def _user(row: Row[Any]) -> ConsoleUser:
    return ConsoleUser(row.id, row.username, row.tenant_id, row.tenant_name, row.role,
                       row.time_zone or DEFAULT_TIME_ZONE)


ACCOUNTS = Accounts(AccountsConfig(
    table=console_users, roles=ROLES, user=_user, error=ConsoleUserError, query=_select,
    exists_code="console.user_exists", not_found_code="console.user_not_found",
    # an e-mail address is a common customer login name
    username=re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,63}$"),
    username_rule="2-64 of a-z 0-9 _ . @ - starting with a letter or digit",
))


def _tenant_id(db: Engine, tenant: str) -> int:
    with db.connect() as conn:
        tid = conn.execute(select(tenants.c.id).where(tenants.c.name == tenant)).scalar_one_or_none()
    if tid is None:
        raise ConsoleUserError(f"no tenant {tenant!r} (smsguard tenant create {tenant})", where="tenant",
                               code="tenant.not_found")
    return tid


def create_user(db: Engine, username: str, password: str, *, tenant: str, role: str = "customer") -> ConsoleUser:
    ACCOUNTS.check(username, password, role)  # bad input is reported before an unknown tenant
    tid = _tenant_id(db, tenant)
    return ConsoleUser(ACCOUNTS.create_user(db, username, password, role, tenant_id=tid), username, tid, tenant, role)


# The rest is webauth's as it stands; module functions so callers keep importing them from here.
set_password = ACCOUNTS.set_password
authenticate = ACCOUNTS.authenticate
get_user = ACCOUNTS.get_user
list_users = ACCOUNTS.list_users
disable_user = ACCOUNTS.disable_user


def tenant_time_zone(db: Engine, tenant_id: int, default: str = DEFAULT_TIME_ZONE) -> str:
    with db.connect() as conn:
        tz = conn.execute(
            select(console_tenants.c.time_zone).where(console_tenants.c.tenant_id == tenant_id)
        ).scalar_one_or_none()
    return tz or default


def tenant_time_zones(db: Engine) -> dict[str | int, str]:
    """Every tenant's zone by tenant name and by id (the default for a tenant that never set one): for pages that
    show several tenants' times, e.g. the reviewer queue, each in its own tenant's zone."""
    with db.connect() as conn:
        rows = conn.execute(
            select(tenants.c.id, tenants.c.name, console_tenants.c.time_zone)
            .outerjoin(console_tenants, console_tenants.c.tenant_id == tenants.c.id)
        ).all()
    zones: dict[str | int, str] = {}
    for r in rows:
        zones[r.name] = zones[r.id] = r.time_zone or DEFAULT_TIME_ZONE
    return zones


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


__all__ = ["DEFAULT_TIME_ZONE", "MIN_PASSWORD", "ConsoleUser", "ConsoleUserError", "authenticate", "create_user",
           "disable_user", "get_user", "list_users", "set_password", "set_time_zone", "tenant_time_zone",
           "tenant_time_zones"]
