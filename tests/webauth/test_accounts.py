"""Accounts on a table of the tests' own (see webauth_support): input rules, errors with the configured codes,
constant-time log-in that refuses disabled accounts, and the stored hash upgraded when parameters were raised."""

from __future__ import annotations

import re
import uuid

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from webauth_support import ACCOUNTS, PASSWORD, TeamUser, TeamUserError, team_users

from smsguard.webauth import MIN_PASSWORD, Accounts, AccountsConfig
from smsguard.webauth._passwords import needs_rehash


def _name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def test_create_then_authenticate(db) -> None:
    name = _name()
    uid = ACCOUNTS.create_user(db, name, PASSWORD, "lead", team=7)
    assert ACCOUNTS.authenticate(db, name, PASSWORD) == TeamUser(uid, name, "lead", 7)
    assert ACCOUNTS.get_user(db, uid) == TeamUser(uid, name, "lead", 7)
    with db.connect() as conn:
        stored = conn.execute(select(team_users.c.password_hash).where(team_users.c.id == uid)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_wrong_password_and_unknown_name_are_both_none(db) -> None:
    name = _name()
    ACCOUNTS.create_user(db, name, PASSWORD, "member", team=1)
    assert ACCOUNTS.authenticate(db, name, PASSWORD + "!") is None
    assert ACCOUNTS.authenticate(db, name.upper(), PASSWORD) is None
    assert ACCOUNTS.authenticate(db, "nobody-" + name, PASSWORD) is None


@pytest.mark.parametrize(("username", "password", "role", "where", "message"), [
    ("a", PASSWORD, "member", "username", "2-64 of a-z 0-9 _ . - starting with a letter or digit"),
    ("_alice", PASSWORD, "member", "username", "2-64 of a-z 0-9 _ . - starting with a letter or digit"),
    ("alice@x.cn", PASSWORD, "member", "username", "2-64 of a-z 0-9 _ . - starting with a letter or digit"),
    ("alice", PASSWORD, "admin", "role", "one of member, lead"),
    ("alice", "x" * (MIN_PASSWORD - 1), "member", "password", f"at least {MIN_PASSWORD} characters"),
])
def test_bad_input_is_refused_before_anything_is_stored(db, username, password, role, where, message) -> None:
    with pytest.raises(TeamUserError) as e:
        ACCOUNTS.create_user(db, username, password, role, team=1)
    assert (e.value.where, e.value.message, e.value.code) == (where, message, "team.user")
    assert ACCOUNTS.authenticate(db, username, password) is None


def test_a_taken_name_has_the_configured_code(db) -> None:
    name = _name()
    ACCOUNTS.create_user(db, name, PASSWORD, "member", team=1)
    with pytest.raises(TeamUserError) as e:
        ACCOUNTS.create_user(db, name, PASSWORD, "lead", team=2)
    assert (e.value.code, e.value.where) == ("team.exists", "username")


def test_set_password(db) -> None:
    name = _name()
    ACCOUNTS.create_user(db, name, PASSWORD, "member", team=1)
    ACCOUNTS.set_password(db, name, "another password")
    assert ACCOUNTS.authenticate(db, name, PASSWORD) is None
    assert ACCOUNTS.authenticate(db, name, "another password") is not None
    with pytest.raises(TeamUserError) as e:
        ACCOUNTS.set_password(db, name, "short")
    assert e.value.where == "password"
    with pytest.raises(TeamUserError) as e:
        ACCOUNTS.set_password(db, "nobody-" + name, "another password")
    assert (e.value.code, e.value.message) == ("team.not_found", f"no user {'nobody-' + name!r}")


def test_a_disabled_account_cannot_log_in_and_its_sessions_find_no_user(db) -> None:
    name = _name()
    uid = ACCOUNTS.create_user(db, name, PASSWORD, "member", team=1)
    ACCOUNTS.disable_user(db, name)
    assert ACCOUNTS.authenticate(db, name, PASSWORD) is None
    assert ACCOUNTS.get_user(db, uid) is None
    listed = dict((u.username, disabled) for u, disabled in ACCOUNTS.list_users(db))
    assert listed[name] is not None
    with pytest.raises(TeamUserError) as e:
        ACCOUNTS.disable_user(db, "nobody-" + name)
    assert e.value.code == "team.not_found"


def test_list_is_oldest_first(db) -> None:
    names = [_name() for _ in range(3)]
    for n in names:
        ACCOUNTS.create_user(db, n, PASSWORD, "member", team=1)
    listed = [u.username for u, _ in ACCOUNTS.list_users(db)]
    assert [n for n in listed if n in names] == names


def test_a_hash_made_with_weaker_parameters_is_upgraded_at_login(db) -> None:
    name = _name()
    uid = ACCOUNTS.create_user(db, name, PASSWORD, "member", team=1)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with db.begin() as conn:
        conn.execute(update(team_users).where(team_users.c.id == uid).values(password_hash=weak))
    assert ACCOUNTS.authenticate(db, name, PASSWORD) is not None
    with db.connect() as conn:
        stored = conn.execute(select(team_users.c.password_hash).where(team_users.c.id == uid)).scalar_one()
    assert stored != weak and ACCOUNTS.authenticate(db, name, PASSWORD) is not None
    assert needs_rehash(stored) is False


def test_username_rule_and_query_are_configurable(db) -> None:
    from sqlalchemy import literal

    mail = Accounts(AccountsConfig(
        table=team_users, roles=("member",), user=lambda r: (r.username, r.extra), error=TeamUserError,
        exists_code="x", not_found_code="y", username=re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,63}$"),
        username_rule="an e-mail address", query=lambda: select(team_users, literal("joined").label("extra")),
    ))
    name = f"{_name()}@example.cn"
    mail.create_user(db, name, PASSWORD, "member", team=3)
    assert mail.authenticate(db, name, PASSWORD) == (name, "joined")
    with pytest.raises(TeamUserError, match="an e-mail address"):
        mail.create_user(db, "-bad", PASSWORD, "member", team=3)
