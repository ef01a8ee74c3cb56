"""Reviewer accounts: argon2id password hashes (argon2-cffi), four roles.

Roles: ``reviewer`` < ``senior`` < ``admin`` may act on items (seniors and admins also on escalated items and
as the second approver of the four-eyes rule); ``auditor`` sees everything and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine import SmsguardError

from ._tables import review_users

ROLES = ("auditor", "reviewer", "senior", "admin")
_RANK = {"auditor": 0, "reviewer": 1, "senior": 2, "admin": 3}
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
MIN_PASSWORD = 8

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the user does not exist, so a login takes as long for an unknown name as for a
# wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class UserError(SmsguardError):
    code = "user.invalid"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: str

    @property
    def consumer(self) -> str:
        """This reviewer's consumer name in the Redis consumer group."""
        return f"u{self.id}"

    @property
    def can_act(self) -> bool:
        return _RANK[self.role] >= _RANK["reviewer"]

    @property
    def is_senior(self) -> bool:
        return _RANK[self.role] >= _RANK["senior"]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def create_user(db: Engine, username: str, password: str, role: str) -> User:
    if not _USERNAME.match(username):
        raise UserError("2-64 of a-z 0-9 _ . - starting with a letter or digit", where="username")
    if role not in ROLES:
        raise UserError(f"one of {', '.join(ROLES)}", where="role")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"at least {MIN_PASSWORD} characters", where="password")
    try:
        with db.begin() as conn:
            uid = conn.execute(
                insert(review_users)
                .values(username=username, password_hash=_hasher.hash(password), role=role,
                        created_at=datetime.now(UTC))
                .returning(review_users.c.id)
            ).scalar_one()
    except IntegrityError:
        raise UserError(f"user {username!r} exists", where="username", code="user.exists") from None
    return User(uid, username, role)


def set_password(db: Engine, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"at least {MIN_PASSWORD} characters", where="password")
    with db.begin() as conn:
        done = conn.execute(
            update(review_users).where(review_users.c.username == username).values(password_hash=_hasher.hash(password))
        ).rowcount
    if not done:
        raise UserError(f"no user {username!r}", where="username", code="user.not_found")


def authenticate(db: Engine, username: str, password: str) -> User | None:
    """The user if ``password`` is theirs (and the account is not disabled), else None."""
    with db.connect() as conn:
        row = conn.execute(select(review_users).where(review_users.c.username == username)).one_or_none()
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):  # parameters were raised since: upgrade the stored hash
        with db.begin() as conn:
            conn.execute(
                update(review_users).where(review_users.c.id == row.id).values(password_hash=_hasher.hash(password))
            )
    return User(row.id, row.username, row.role)


def get_user(db: Engine, user_id: int) -> User | None:
    with db.connect() as conn:
        row = conn.execute(
            select(review_users).where(review_users.c.id == user_id, review_users.c.disabled_at.is_(None))
        ).one_or_none()
    return None if row is None else User(row.id, row.username, row.role)


def list_users(db: Engine) -> list[tuple[User, datetime | None]]:
    with db.connect() as conn:
        rows = conn.execute(select(review_users).order_by(review_users.c.id)).all()
    return [(User(r.id, r.username, r.role), r.disabled_at) for r in rows]
