"""Console sessions: the reviewer UI's SQL session store, with every key under a ``console:`` prefix.

Same table (``review_sessions``), same reasons (a Redis flush must not log customers out), and the prefix keeps
the two UIs' sessions apart: a reviewer's session id pasted into the console's cookie finds nothing.
"""

from __future__ import annotations

from datetime import timedelta

import anyio.to_thread
from sqlalchemy import delete

from review._tables import review_sessions
from review_ui._sessions import SqlSessionStore

PREFIX = "console:"


def _k(key: str) -> str:
    # the base class's get() deletes an expired session through self.delete() with the key it was given,
    # which is already prefixed: prefix once only (litestar's session ids are hex, never "console:…")
    return key if key.startswith(PREFIX) else PREFIX + key


class ConsoleSessionStore(SqlSessionStore):
    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        await super().set(_k(key), value, expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        return await super().get(_k(key), renew_for)

    async def delete(self, key: str) -> None:
        await super().delete(_k(key))

    async def expires_in(self, key: str) -> int | None:
        return await super().expires_in(_k(key))

    async def delete_all(self) -> None:
        """Only the console's sessions: reviewers stay logged in."""
        self._written.clear()

        def run() -> None:
            with self.db.begin() as conn:
                conn.execute(delete(review_sessions).where(review_sessions.c.key.startswith(PREFIX)))

        await anyio.to_thread.run_sync(run)
