"""Web accounts: one table per audience, argon2id password hashes, roles, disabling, constant-time log-in.

The reviewer UI (``review._users``) and the customer console (``console._users``) keep their accounts in tables
of their own on purpose (see ``console._tables``); what they do with them is the same and lives here, with the
table, the roles and the user object passed in as an ``AccountsConfig``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Engine, Row, Select, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from smsguard.core import SmsguardError

from ._passwords import MIN_PASSWORD, hash_password, needs_rehash, verify_password

U = TypeVar("U")


class Account(Protocol):
    """What the shared code reads of an application's user object."""

    @property
    def id(self) -> int: ...

    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AccountsConfig(Generic[U]):
    """One audience's accounts: where they are stored, what they may be called and how errors are coded."""

    table: Table
    """Needs the columns ``id``, ``username`` (unique), ``password_hash``, ``role``, ``created_at`` and
    ``disabled_at``; any other column is filled through ``Accounts.create_user(..., **columns)``."""
    roles: tuple[str, ...]
    user: Callable[[Row[Any]], U]
    """The application's user object from a row of ``query``."""
    error: type[SmsguardError]
    """Raised with its own code for bad input, and with the codes below for a taken or an unknown name."""
    exists_code: str
    not_found_code: str
    username: re.Pattern[str] = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
    username_rule: str = "2-64 of a-z 0-9 _ . - starting with a letter or digit"
    """The message for a name ``username`` refuses."""
    query: Callable[[], Select[Any]] | None = None
    """The SELECT rows are read with (joins for the user's other fields); by default the table alone."""


class Accounts(Generic[U]):
    """Create, change, look up and authenticate the accounts of one ``AccountsConfig``; each call takes the engine."""

    def __init__(self, config: AccountsConfig[U]) -> None:
        self.config = config
        self.table = config.table

    def check(self, username: str, password: str, role: str) -> None:
        """Raise the config's error if a new account may not have this name, password or role."""
        c = self.config
        if not c.username.match(username):
            raise c.error(c.username_rule, where="username")
        if role not in c.roles:
            raise c.error(f"one of {', '.join(c.roles)}", where="role")
        self._check_password(password)

    def create_user(self, db: Engine, username: str, password: str, role: str, **columns: Any) -> int:
        """The new account's id; ``columns`` are the table's own columns (the console's ``tenant_id``)."""
        self.check(username, password, role)
        t = self.table
        try:
            with db.begin() as conn:
                return conn.execute(
                    insert(t)
                    .values(username=username, password_hash=hash_password(password), role=role,
                            created_at=datetime.now(UTC), **columns)
                    .returning(t.c.id)
                ).scalar_one()
        except IntegrityError:
            raise self.config.error(f"user {username!r} exists", where="username",
                                    code=self.config.exists_code) from None

    def set_password(self, db: Engine, username: str, password: str) -> None:
        self._check_password(password)
        self._update(db, username, password_hash=hash_password(password))

    def disable_user(self, db: Engine, username: str) -> None:
        """The account can no longer log in, and its open sessions find no user any more."""
        self._update(db, username, disabled_at=datetime.now(UTC))

    def authenticate(self, db: Engine, username: str, password: str) -> U | None:
        """The user if ``password`` is theirs and the account is not disabled, else None."""
        t = self.table
        with db.connect() as conn:
            row = conn.execute(self._select().where(t.c.username == username)).one_or_none()
        # verified even when there is no such row (see _passwords): the reply takes as long either way
        if not verify_password(None if row is None else row.password_hash, password):
            return None
        if row is None or row.disabled_at is not None:
            return None
        if needs_rehash(row.password_hash):
            with db.begin() as conn:
                conn.execute(update(t).where(t.c.id == row.id).values(password_hash=hash_password(password)))
        return self.config.user(row)

    def get_user(self, db: Engine, user_id: int) -> U | None:
        """The enabled account with this id (a session's user), else None."""
        t = self.table
        with db.connect() as conn:
            row = conn.execute(self._select().where(t.c.id == user_id, t.c.disabled_at.is_(None))).one_or_none()
        return None if row is None else self.config.user(row)

    def list_users(self, db: Engine) -> list[tuple[U, datetime | None]]:
        """Every account with the time it was disabled (None: enabled), oldest first."""
        with db.connect() as conn:
            rows = conn.execute(self._select().order_by(self.table.c.id)).all()
        return [(self.config.user(r), r.disabled_at) for r in rows]

    def _select(self) -> Select[Any]:
        return self.config.query() if self.config.query is not None else select(self.table)

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise self.config.error(f"at least {MIN_PASSWORD} characters", where="password")

    def _update(self, db: Engine, username: str, **values: Any) -> None:
        t = self.table
        with db.begin() as conn:
            done = conn.execute(update(t).where(t.c.username == username).values(**values)).rowcount
        if not done:
            raise self.config.error(f"no user {username!r}", where="username", code=self.config.not_found_code)
