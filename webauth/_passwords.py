"""Password hashes: argon2id (argon2-cffi) with the library's current recommended parameters.

Only the hash is ever stored. A login for a name nobody has still runs one verification (against a dummy
hash), so an unknown name takes as long as a wrong password: no user enumeration by timing.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 8
"""The shortest password an account may be given."""

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash. ``None`` (no such account) costs a verification all the
    same and is never a match; a malformed stored hash is no match either."""
    try:
        _hasher.verify(_DUMMY_HASH if stored is None else stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


def needs_rehash(stored: str) -> bool:
    """The hasher's parameters were raised since ``stored`` was made: hash the password again at its next login."""
    return _hasher.check_needs_rehash(stored)
