"""Server-side sessions in SQL, and the secret that signs CSRF tokens.

SQL rather than Redis on purpose: Redis is rebuildable state, and a Redis flush must not log every reviewer
and customer out in the middle of their work. Only the session id travels in the (HttpOnly, SameSite=Lax)
cookie. Several UIs may share one table, each under its own key ``prefix``: a session id of one UI presented
to another then finds nothing there.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
from litestar.stores.base import Store
from sqlalchemy import Engine, Table, delete, insert, select, update

from smsguard.core import Settings, load_secrets


class SqlSessionStore(Store):
    """A litestar ``Store`` on a table with the columns ``key`` (primary key), ``data`` and ``expires_at``."""

    def __init__(self, db: Engine, table: Table, *, prefix: str = "") -> None:
        self.db = db
        self.table = table
        self.prefix = prefix
        # What this process last wrote per session: the middleware stores the session after every response,
        # and rewriting identical data would add a SQL write to every click.
        self._written: dict[str, tuple[bytes, float]] = {}

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        key = self.prefix + key
        data = value.encode() if isinstance(value, str) else value
        if data == b"{}":  # litestar stores every anonymous visitor's empty session: a SQL write per page view
            if key in self._written or await anyio.to_thread.run_sync(self._get, key) is not None:
                await self._delete(key)
            return
        seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
        last = self._written.get(key)
        if last is not None and last[0] == data and (seconds is None or last[1] - time.time() > seconds * 0.9):
            return
        expires = None if seconds is None else datetime.now(UTC) + timedelta(seconds=seconds)
        await anyio.to_thread.run_sync(self._set, key, data, expires)
        if len(self._written) > 10_000:
            self._written.clear()
        self._written[key] = (data, time.time() + (seconds or 10**9))

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        key = self.prefix + key
        row = await anyio.to_thread.run_sync(self._get, key)
        if row is None:
            return None
        data, expires = row
        if expires is not None and _aware(expires) <= datetime.now(UTC):
            await self._delete(key)
            return None
        return bytes(data)

    async def delete(self, key: str) -> None:
        await self._delete(self.prefix + key)

    async def delete_all(self) -> None:
        """This store's sessions only: the other UIs sharing the table stay logged in."""
        self._written.clear()
        t = self.table

        def run() -> None:
            with self.db.begin() as conn:
                conn.execute(delete(t).where(t.c.key.startswith(self.prefix)) if self.prefix else delete(t))

        await anyio.to_thread.run_sync(run)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = await anyio.to_thread.run_sync(self._get, self.prefix + key)
        if row is None or row[1] is None:
            return None
        return max(0, int((_aware(row[1]) - datetime.now(UTC)).total_seconds()))

    # -- SQL, in the thread pool; keys here carry the prefix already -----------------------------------
    def _set(self, key: str, data: bytes, expires: datetime | None) -> None:
        t = self.table
        with self.db.begin() as conn:
            if not conn.execute(update(t).where(t.c.key == key).values(data=data, expires_at=expires)).rowcount:
                conn.execute(insert(t).values(key=key, data=data, expires_at=expires))

    def _get(self, key: str) -> tuple[bytes, datetime | None] | None:
        t = self.table
        with self.db.connect() as conn:
            row = conn.execute(select(t.c.data, t.c.expires_at).where(t.c.key == key)).one_or_none()
        return None if row is None else (row.data, row.expires_at)

    async def _delete(self, key: str) -> None:
        self._written.pop(key, None)
        t = self.table

        def run() -> None:
            with self.db.begin() as conn:
                conn.execute(delete(t).where(t.c.key == key))

        await anyio.to_thread.run_sync(run)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive datetimes


def load_secret(data_dir: Path) -> str:
    """The embedded default's session secret in ``data_dir`` (created once, 0600), so every worker process and
    every restart signs CSRF tokens alike. A deployment takes it from the settings: ``Runtime.secrets``."""
    return load_secrets(Settings(data_dir=Path(data_dir))).session_secret
