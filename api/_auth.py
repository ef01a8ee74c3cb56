"""API-key checks: the ``Authorization: Bearer`` / ``X-API-Key`` header to a ``KeyInfo``.

Keys are checked against SQL once and then remembered per process for ``key_cache_ttl`` seconds; "last used"
(shown in the console) is written at most once per ``TOUCH_EVERY`` per key and process.
"""

from __future__ import annotations

import hashlib
import logging
import time

import anyio.to_thread
from sqlalchemy import Engine as SqlEngine

from smsguard.core import UnauthenticatedError
from smsguard.storage import TOUCH_EVERY, KeyInfo, find_key, touch_key

log = logging.getLogger("smsguard.api")

_REMEMBERED = 10_000  # keys (and "last used" marks) kept per process before the memory is cleared


class Unauthorized(UnauthenticatedError):
    code = "auth.invalid_key"


class KeyCheck:
    """Checks API keys against SQL, remembering each answer for ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.db: SqlEngine | None = None  # set when the service starts
        self._keys: dict[str, tuple[KeyInfo, float]] = {}
        self._touched: dict[int, float] = {}  # key id → when this process last wrote its last_used_at

    async def authenticate(self, authorization: str | None, x_api_key: str | None) -> KeyInfo:
        if authorization:
            scheme, _, key = authorization.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise Unauthorized(
                    "use 'Authorization: Bearer <key>'", where="header Authorization", code="auth.malformed"
                )
            key = key.strip()
        elif x_api_key:
            key = x_api_key.strip()
        else:
            raise Unauthorized("an API key is required", where="header Authorization", code="auth.missing_key")
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        hit = self._keys.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        info = await anyio.to_thread.run_sync(find_key, self.db, key)
        if info is None:
            raise Unauthorized("unknown or revoked API key", where="header Authorization")
        if len(self._keys) > _REMEMBERED:
            self._keys.clear()
        self._keys[digest] = (info, now + self.ttl)
        if now - self._touched.get(info.key_id, -TOUCH_EVERY) >= TOUCH_EVERY:  # "last used" in the console
            self._touched[info.key_id] = now
            if len(self._touched) > _REMEMBERED:
                self._touched.clear()
            try:
                await anyio.to_thread.run_sync(touch_key, self.db, info.key_id)
            except Exception:  # bookkeeping: a locked database must not refuse the request
                log.warning("could not record the use of key %s", info.prefix, exc_info=True)
        return info
