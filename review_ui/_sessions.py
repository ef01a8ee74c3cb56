"""Reviewer sessions: litestar's server-side session middleware on a store kept in SQL (``review_sessions``).

SQL rather than Redis on purpose: Redis is rebuildable state, and a Redis flush must not log every reviewer
out in the middle of a review. Only the session id travels in the (HttpOnly, SameSite=Lax) cookie.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
from litestar.stores.base import Store
from sqlalchemy import Engine, delete, insert, select, update

from review._tables import review_sessions


class SqlSessionStore(Store):
    def __init__(self, db: Engine) -> None:
        self.db = db
        # What this process last wrote per session: the middleware stores the session after every response,
        # and rewriting identical data would add a SQL write to every reviewer action.
        self._written: dict[str, tuple[bytes, float]] = {}

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        data = value.encode() if isinstance(value, str) else value
        seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
        last = self._written.get(key)
        if last is not None and last[0] == data and (seconds is None or last[1] - time.time() > seconds * 0.9):
            return
        expires = None if seconds is None else datetime.now(UTC) + timedelta(seconds=seconds)
        await anyio.to_thread.run_sync(self._set, key, data, expires)
        if len(self._written) > 10_000:
            self._written.clear()
        self._written[key] = (data, time.time() + (seconds or 10**9))

    def _set(self, key: str, data: bytes, expires: datetime | None) -> None:
        with self.db.begin() as conn:
            if not conn.execute(
                update(review_sessions).where(review_sessions.c.key == key).values(data=data, expires_at=expires)
            ).rowcount:
                conn.execute(insert(review_sessions).values(key=key, data=data, expires_at=expires))

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        row = await anyio.to_thread.run_sync(self._get, key)
        if row is None:
            return None
        data, expires = row
        if expires is not None:
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
            if expires <= datetime.now(UTC):
                await self.delete(key)
                return None
        return bytes(data)

    def _get(self, key: str) -> tuple[bytes, datetime | None] | None:
        with self.db.connect() as conn:
            row = conn.execute(
                select(review_sessions.c.data, review_sessions.c.expires_at).where(review_sessions.c.key == key)
            ).one_or_none()
        return None if row is None else (row.data, row.expires_at)

    async def delete(self, key: str) -> None:
        self._written.pop(key, None)

        def run() -> None:
            with self.db.begin() as conn:
                conn.execute(delete(review_sessions).where(review_sessions.c.key == key))

        await anyio.to_thread.run_sync(run)

    async def delete_all(self) -> None:
        self._written.clear()

        def run() -> None:
            with self.db.begin() as conn:
                conn.execute(delete(review_sessions))

        await anyio.to_thread.run_sync(run)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = await anyio.to_thread.run_sync(self._get, key)
        if row is None or row[1] is None:
            return None
        expires = row[1] if row[1].tzinfo else row[1].replace(tzinfo=UTC)
        return max(0, int((expires - datetime.now(UTC)).total_seconds()))


def load_secret(data_dir: Path) -> str:
    """``SMSGUARD_REVIEW_SECRET``, else a random secret kept in ``<data_dir>/review-secret`` (created once, 0600),
    so every worker process and every restart signs CSRF tokens alike."""
    env = os.environ.get("SMSGUARD_REVIEW_SECRET")
    if env:
        return env
    path = data_dir / "review-secret"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another worker is writing it right now
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty") from None
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret
