"""The SQL session store: round trip, expiry, and UIs sharing one table under their own key prefixes; the CSRF
secret that every worker process shares."""

from __future__ import annotations

import asyncio
import stat
import uuid

from sqlalchemy import select
from webauth_support import sessions

from smsguard.webauth import SqlSessionStore, load_secret


def _run(coro):
    return asyncio.run(coro)


def test_set_get_delete(db) -> None:
    store = SqlSessionStore(db, sessions)
    key = uuid.uuid4().hex
    assert _run(store.get(key)) is None
    _run(store.set(key, b"data", expires_in=60))
    assert _run(store.get(key)) == b"data"
    assert _run(store.exists(key))
    assert 55 <= _run(store.expires_in(key)) <= 60
    _run(store.set(key, "text"))  # str is stored as UTF-8; None: no expiry
    assert _run(store.get(key)) == b"text" and _run(store.expires_in(key)) is None
    _run(store.delete(key))
    assert _run(store.get(key)) is None and not _run(store.exists(key))


def test_an_expired_session_is_gone_and_deleted(db) -> None:
    store = SqlSessionStore(db, sessions)
    key = uuid.uuid4().hex
    _run(store.set(key, b"data", expires_in=-1))
    assert _run(store.get(key)) is None
    with db.connect() as conn:
        assert conn.execute(select(sessions.c.key).where(sessions.c.key == key)).first() is None


def test_a_second_process_sees_what_the_first_wrote(db) -> None:
    key = uuid.uuid4().hex
    _run(SqlSessionStore(db, sessions).set(key, b"one", expires_in=60))
    assert _run(SqlSessionStore(db, sessions).get(key)) == b"one"


def test_prefixed_stores_share_a_table_but_not_sessions(db) -> None:
    plain, console = SqlSessionStore(db, sessions), SqlSessionStore(db, sessions, prefix="console:")
    key = uuid.uuid4().hex
    _run(console.set(key, b"customer", expires_in=60))
    assert _run(console.get(key)) == b"customer"
    assert _run(plain.get(key)) is None  # the same id presented to the other UI finds nothing
    with db.connect() as conn:
        assert conn.execute(select(sessions.c.key).where(sessions.c.key == f"console:{key}")).first() is not None
    _run(plain.set(key, b"reviewer", expires_in=60))
    _run(console.delete_all())  # the console's sessions only
    assert _run(console.get(key)) is None and _run(plain.get(key)) == b"reviewer"
    _run(plain.delete_all())  # an unprefixed store clears the whole table
    with db.connect() as conn:
        assert conn.execute(select(sessions.c.key)).first() is None


def test_secret_is_created_once_private_and_then_reused(tmp_path) -> None:
    first = load_secret(tmp_path / "data")
    assert len(first) == 64
    assert stat.S_IMODE((tmp_path / "data" / "session-secret").stat().st_mode) == 0o600
    assert load_secret(tmp_path / "data") == first
    assert load_secret(tmp_path / "other") != first


def test_a_configured_secret_comes_from_the_settings(tmp_path) -> None:
    from smsguard.core import Settings, load_secrets

    settings = Settings(data_dir=tmp_path, session_secret="from-the-environment-0123456789")
    assert load_secrets(settings).session_secret == "from-the-environment-0123456789"
