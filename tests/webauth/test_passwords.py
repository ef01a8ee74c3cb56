"""Password hashes: argon2id, salted, and a verification that never raises."""

from __future__ import annotations

from smsguard.webauth import hash_password, verify_password
from smsguard.webauth._passwords import needs_rehash


def test_hash_and_verify_round_trip() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse battery" not in stored
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY")
    assert not needs_rehash(stored)


def test_hashes_are_salted() -> None:
    assert hash_password("same password") != hash_password("same password")


def test_no_stored_hash_and_a_malformed_one_never_match() -> None:
    assert not verify_password(None, "not-a-real-password")  # the dummy hash's own password is no way in
    assert not verify_password(None, "")
    assert not verify_password("not a hash", "anything")
    assert not verify_password("", "")


def test_weaker_parameters_need_a_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert verify_password(weak, "pw")
    assert needs_rehash(weak)


def test_a_stronger_older_hash_is_kept_not_downgraded() -> None:
    """The library default (64 MiB, 3 passes, 4 lanes) made the hashes before the cheaper parameters: they still
    verify and are not re-hashed to weaker ones at the next login."""
    from argon2 import PasswordHasher

    strong = PasswordHasher().hash("pw")
    assert verify_password(strong, "pw") and not verify_password(strong, "other")
    assert not needs_rehash(strong)
    assert not needs_rehash(hash_password("pw"))
    assert needs_rehash("not a hash")
