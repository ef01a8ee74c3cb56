"""Reviewer accounts (``review_users``): argon2id password hashes, four roles. Storage, hashing and log-in are
``webauth``'s, shared with the console's accounts; the roles and what they allow are review's.

Roles: ``reviewer`` < ``senior`` < ``admin`` may act on items (seniors and admins also on escalated items and
as the second approver of the four-eyes rule); ``auditor`` sees everything and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Row

from smsguard.core import SmsguardError
from smsguard.webauth import MIN_PASSWORD, Accounts, AccountsConfig

from ._tables import review_users

ROLES = ("auditor", "reviewer", "senior", "admin")
_RANK = {"auditor": 0, "reviewer": 1, "senior": 2, "admin": 3}


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


def _user(row: Row[Any]) -> User:
    return User(row.id, row.username, row.role)


ACCOUNTS = Accounts(AccountsConfig(table=review_users, roles=ROLES, user=_user, error=UserError,
                                   exists_code="user.exists", not_found_code="user.not_found"))


def create_user(db: Engine, username: str, password: str, role: str) -> User:
    return User(ACCOUNTS.create_user(db, username, password, role), username, role)


# The rest is webauth's as it stands; module functions so callers keep importing them from here.
set_password = ACCOUNTS.set_password
authenticate = ACCOUNTS.authenticate
get_user = ACCOUNTS.get_user
list_users = ACCOUNTS.list_users

__all__ = ["MIN_PASSWORD", "ROLES", "User", "UserError", "authenticate", "create_user", "get_user", "list_users",
           "set_password"]
