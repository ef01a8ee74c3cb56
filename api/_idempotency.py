"""``Idempotency-Key`` on every creating POST (``/v1/messages``, ``/v1/verify``, ``/v1/batches``,
``/v1/contact-lists``): a retry with the same key and the same request gets the first answer again (status and
body, plus ``Idempotent-Replayed: true``); the same key with another request is a 409 ``idempotency.mismatch``;
the same key while its first request still runs is a 409 ``idempotency.in_progress``.

Keys are per tenant and live 24 hours. They are rows in SQL (``idempotency_keys``, migration messages_0001):
the key is claimed (committed) before the work starts and the answer is committed with it once the work is
done, so a retry that reaches another process, or this one after a restart, finds it. Only successful answers
are kept: a request that failed (a 4xx or a 5xx) left nothing behind, and its retry runs again. A claim whose
request died without answering (a crashed process) is taken over after ``LOCK`` by the next retry.

The fingerprint is SHA-256 over the method, the route and the body's bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Request, Response
from litestar.params import Parameter
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from smsguard.core import ConflictError, InputError

TTL = timedelta(hours=24)
LOCK = timedelta(seconds=60)
"""How long a claimed key waits for its first request's answer before a retry may run the request again."""
HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no blanks: what every client library sends

IdempotencyKey = Annotated[
    str | None,
    Parameter(header=HEADER, min_length=1, max_length=255, pattern=_KEY.pattern, required=False,
              description="Makes the POST safe to retry for 24 h: the same key and body return the first answer; "
              "the same key with another body is a 409 (idempotency.mismatch)"),
]

_metadata = MetaData()
idempotency_keys = Table(
    "idempotency_keys",
    _metadata,
    Column("tenant_id", Integer, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


class IdempotencyConflict(ConflictError):
    code = "idempotency.mismatch"


class InProgress(ConflictError):  # 409, not 429: the client did nothing too often, it repeated itself too early
    code = "idempotency.in_progress"


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


class Idempotency:
    """The store and the wrapper the creating routes share."""

    def __init__(self, db: Callable[[], Engine]) -> None:
        self._db = db  # a callable: the app's SQL engine exists once the app has started
        self._calls = 0

    async def run(
        self,
        request: Request,
        key: str | None,
        work: Callable[[], Awaitable[Any]],
        *,
        status_code: int | Callable[[Any], int] = 201,
        body: bytes | None = None,
    ) -> Response:
        """Answer ``work()`` (a JSON-able result) with ``status_code`` (or ``status_code(result)``), once per key."""
        if key is None:
            result = await work()
            return _answer(result, status_code)
        if not _KEY.match(key):
            raise InputError("Idempotency-Key must be 1 to 255 printable ASCII characters without blanks",
                             where=f"header {HEADER}", code="idempotency.key")
        raw = body if body is not None else await request.body()
        route = request.scope.get("path_template", request.url.path)
        fingerprint = hashlib.sha256(f"{request.method} {route}\n".encode() + raw).hexdigest()
        tenant_id = request.state.key.tenant_id
        stored = await anyio.to_thread.run_sync(self._claim, tenant_id, key, fingerprint)
        if stored is not None:
            status, content = stored
            return Response(content=content, status_code=status, media_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
        try:
            result = await work()
        except BaseException:
            await anyio.to_thread.run_sync(self._release, tenant_id, key)
            raise
        response = _answer(result, status_code)
        await anyio.to_thread.run_sync(self._store, tenant_id, key, response.status_code, response.content)
        return response

    def _claim(self, tenant_id: int, key: str, fingerprint: str) -> tuple[int, bytes] | None:
        """None when this request now owns the key; the stored (status, body) for a repeat; else a 409."""
        at = datetime.now(UTC)
        t = idempotency_keys.c
        with self._db().begin() as conn:
            self._calls += 1
            if self._calls % 1000 == 1:  # expired keys go now and then, not on every request
                conn.execute(delete(idempotency_keys).where(t.expires_at < at))
            conn.execute(delete(idempotency_keys).where(t.tenant_id == tenant_id, t.key == key, t.expires_at < at))
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            inserted = conn.execute(
                dialect.insert(idempotency_keys)
                .values(tenant_id=tenant_id, key=key, fingerprint=fingerprint, created_at=at,
                        locked_until=at + LOCK, expires_at=at + TTL)
                .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
                .returning(idempotency_keys.c.key)  # rowcount is not reliable here (psycopg says -1)
            ).first()
            if inserted is not None:
                return None
            row = conn.execute(select(idempotency_keys).where(t.tenant_id == tenant_id, t.key == key)
                               .with_for_update()).one()
            if row.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    f"Idempotency-Key {key!r} was used with another request (method, route or body) in the last "
                    "24 hours: use a new key for a new request", where=f"header {HEADER}")
            if row.status_code is not None:
                return row.status_code, bytes(row.body)
            if _aware(row.locked_until) > at:
                wait = max(1, int((_aware(row.locked_until) - at).total_seconds()))
                raise InProgress(f"the first request with Idempotency-Key {key!r} is still running: retry in "
                                 f"{wait} s", where=f"header {HEADER}")
            conn.execute(update(idempotency_keys).where(t.tenant_id == tenant_id, t.key == key)
                         .values(locked_until=at + LOCK))  # its first request died: this one takes over
            return None

    def _release(self, tenant_id: int, key: str) -> None:
        t = idempotency_keys.c
        with self._db().begin() as conn:
            conn.execute(delete(idempotency_keys).where(t.tenant_id == tenant_id, t.key == key,
                                                        t.status_code.is_(None)))

    def _store(self, tenant_id: int, key: str, status: int, content: bytes) -> None:
        t = idempotency_keys.c
        with self._db().begin() as conn:
            conn.execute(update(idempotency_keys).where(t.tenant_id == tenant_id, t.key == key)
                         .values(status_code=status, body=content))


_encode = msgspec.json.Encoder().encode


def _answer(result: Any, status_code: int | Callable[[Any], int]) -> Response:
    status = status_code(result) if callable(status_code) else status_code
    return Response(content=_encode(result), status_code=status, media_type="application/json")
