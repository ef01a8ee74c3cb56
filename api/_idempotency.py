"""``Idempotency-Key`` on every creating POST (``/v1/messages``, ``/v1/verify``, ``/v1/batches``,
``/v1/contact-lists``): a retry with the same key and the same request gets the first answer again (status and
body, plus ``Idempotent-Replayed: true``); the same key with another request is a 409 ``idempotency.mismatch``;
the same key while its first request still runs is a 409 ``idempotency.in_progress``.

Keys are per tenant and live 24 hours. They are rows in SQL (``idempotency_keys``, migrations messages_0001 and
idemexact_0001): the key is claimed (committed, with its owner: host, process id and the process's start time)
before the work starts, and the answer is committed with it once the work is done, so a retry that reaches
another process, or this one after a restart, finds it.

Exactly once where the work's effects are in SQL: a route that passes ``bind`` to its work gets a
``bind(conn, resource)`` that the work calls inside the transaction that commits its first effect (for
``/v1/messages`` and ``/v1/verify``, the one that creates the message's batch, its message row and the
verification; for ``/v1/batches``, the batch). ``/v1/contact-lists`` has no ``bind`` yet (its import commits in
chunks): a crash there is retried after the owner is found gone, and may import the list twice. The key then
names what was made, in that same transaction, so a crash leaves either nothing (the retry runs the request)
or the resource and the key together (the retry resumes the resource through ``resume`` and answers it; it
never makes a second one). ``bind`` also checks that this request still owns the key, so a request whose claim
was taken over makes nothing (its transaction rolls back, 409).

A claim whose request died without answering is taken over by the next retry: at once when the owner is a
process of this host that is gone (the normal case after a crash and restart), else after ``LOCK``. While the
owner runs, a retry is a 409 ``idempotency.in_progress`` with ``Retry-After``. Only answers are kept: a request
that failed (a 4xx or a 5xx) leaves no key behind, and its retry runs again.

The fingerprint is SHA-256 over the method, the route and the body's bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Request, Response
from litestar.params import Parameter
from sqlalchemy import (
    Column,
    Connection,
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

from smsguard.core import ConflictError, InputError, SmsguardError

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
    Column("owner", String(200), nullable=True),  # host:pid:start of the process running it (idemexact_0001)
    Column("resource", String(100), nullable=True),  # what the work made, bound in the same transaction
)



def _start_of(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat``), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat.rsplit(b")", 1)[-1].split()[19].decode()  # field 22; the name (field 2) may hold blanks


def _me() -> str:
    """This request's owner mark: this process (host, pid, start time) and a nonce for the request."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_of(os.getpid()) or ''}:{secrets.token_hex(4)}"


def _gone(owner: str | None) -> bool:
    """True when ``owner`` was a process of this host that no longer runs (a pid reused later has another start)."""
    parts = (owner or "").rsplit(":", 3)[:3]  # host:pid:start:request
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit() or not parts[2]:
        return False  # another host's (or an unknown) process: only LOCK tells
    return _start_of(int(parts[1])) != parts[2]


def _fault(point: str, setting: str | None) -> None:
    """Test-only (``SMSGUARD_TEST_IDEMPOTENCY_CRASH``): die at ``point`` of a keyed request."""
    if setting == point:
        os.kill(os.getpid(), signal.SIGKILL)


class IdempotencyConflict(ConflictError):
    code = "idempotency.mismatch"


class InProgress(ConflictError):  # 409, not 429: the client did nothing too often, it repeated itself too early
    code = "idempotency.in_progress"

    def __init__(self, message: str, *, where: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, where=where)
        self.retry_after = retry_after  # the answer's Retry-After (webauth.http_headers)


class _Claim:
    __slots__ = ("owner", "resource")

    def __init__(self, owner: str, resource: str | None) -> None:
        self.owner, self.resource = owner, resource


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


class Idempotency:
    """The store and the wrapper the creating routes share."""

    def __init__(self, db: Callable[[], Engine], fault: Callable[[], str | None] = lambda: None) -> None:
        self._db = db  # a callable: the app's SQL engine exists once the app has started
        self._fault = fault  # the test-only crash point (settings.test_idempotency_crash)
        self._calls = 0

    async def run(
        self,
        request: Request,
        key: str | None,
        work: Callable[..., Awaitable[Any]],
        *,
        status_code: int | Callable[[Any], int] = 201,
        body: bytes | None = None,
        resume: Callable[[str], Awaitable[Any]] | None = None,
    ) -> Response:
        """Answer ``work()`` (a JSON-able result) with ``status_code`` (or ``status_code(result)``), once per key.

        With ``resume``, ``work`` is called as ``work(bind)`` and must call ``bind(conn, resource)`` in the
        transaction of its first effect; a retry after a crash then answers ``resume(resource)`` instead."""
        if key is None:
            result = await (work(_no_bind) if resume is not None else work())
            return _answer(result, status_code)
        if not _KEY.match(key):
            raise InputError("Idempotency-Key must be 1 to 255 printable ASCII characters without blanks",
                             where=f"header {HEADER}", code="idempotency.key")
        raw = body if body is not None else await request.body()
        route = request.scope.get("path_template", request.url.path)
        fingerprint = hashlib.sha256(f"{request.method} {route}\n".encode() + raw).hexdigest()
        tenant_id = request.state.key.tenant_id
        claim = await anyio.to_thread.run_sync(self._claim, tenant_id, key, fingerprint)
        if not isinstance(claim, _Claim):
            status, content = claim
            return Response(content=content, status_code=status, media_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
        _fault("after_claim", self._fault())

        def bind(conn: Connection, resource: str) -> None:
            self._bind(conn, tenant_id, key, claim.owner, resource)

        try:
            if resume is not None and claim.resource is not None:
                result = await resume(claim.resource)  # a crashed first request made it: finish and answer it
            elif resume is not None:
                result = await work(bind)
            else:
                result = await work()
        except SmsguardError:  # a refusal (4xx): the work undid what it made (a cancelled batch); retry runs anew
            await anyio.to_thread.run_sync(self._release, tenant_id, key, claim.owner, False)
            raise
        except BaseException:  # a fault after the work made something: the retry resumes it, at once
            await anyio.to_thread.run_sync(self._release, tenant_id, key, claim.owner, True)
            raise
        _fault("after_effects", self._fault())
        response = _answer(result, status_code)
        await anyio.to_thread.run_sync(self._store, tenant_id, key, claim.owner, response.status_code,
                                       response.content)
        return response

    def _claim(self, tenant_id: int, key: str, fingerprint: str) -> _Claim | tuple[int, bytes]:
        """A ``_Claim`` when this request now owns the key; the stored (status, body) for a repeat; else a 409."""
        at = datetime.now(UTC)
        owner = _me()
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
                        locked_until=at + LOCK, expires_at=at + TTL, owner=owner)
                .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
                .returning(idempotency_keys.c.key)  # rowcount is not reliable here (psycopg says -1)
            ).first()
            if inserted is not None:
                return _Claim(owner, None)
            row = conn.execute(select(idempotency_keys).where(t.tenant_id == tenant_id, t.key == key)
                               .with_for_update()).one()
            if row.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    f"Idempotency-Key {key!r} was used with another request (method, route or body) in the last "
                    "24 hours: use a new key for a new request", where=f"header {HEADER}")
            if row.status_code is not None:
                return row.status_code, bytes(row.body)
            if _aware(row.locked_until) > at and not _gone(row.owner):
                wait = max(1, int((_aware(row.locked_until) - at).total_seconds()))
                raise InProgress(f"the first request with Idempotency-Key {key!r} is still running: retry in "
                                 f"{wait} s", where=f"header {HEADER}", retry_after=wait)
            conn.execute(update(idempotency_keys).where(t.tenant_id == tenant_id, t.key == key)
                         .values(locked_until=at + LOCK, owner=owner))  # its first request died: this one takes over
            return _Claim(owner, row.resource)

    def _bind(self, conn: Connection, tenant_id: int, key: str, owner: str, resource: str) -> None:
        """In the work's transaction: the key names ``resource``, if this request still owns it (else roll back)."""
        t = idempotency_keys.c
        done = conn.execute(update(idempotency_keys)
                            .where(t.tenant_id == tenant_id, t.key == key, t.owner == owner, t.resource.is_(None))
                            .values(resource=resource, locked_until=datetime.now(UTC) + LOCK)).rowcount
        if not done:
            raise InProgress(f"another request took over Idempotency-Key {key!r}: retry to get its answer",
                             where=f"header {HEADER}", retry_after=1)

    def _release(self, tenant_id: int, key: str, owner: str, keep_made: bool) -> None:
        """The request ends without an answer: its key goes, unless it made something (then it is unlocked)."""
        t = idempotency_keys.c
        mine = (t.tenant_id == tenant_id, t.key == key, t.owner == owner, t.status_code.is_(None))
        with self._db().begin() as conn:
            if keep_made:
                conn.execute(update(idempotency_keys).where(*mine, t.resource.is_not(None))
                             .values(locked_until=datetime.now(UTC), owner=None))
            conn.execute(delete(idempotency_keys).where(*mine))

    def _store(self, tenant_id: int, key: str, owner: str, status: int, content: bytes) -> None:
        t = idempotency_keys.c
        with self._db().begin() as conn:
            conn.execute(update(idempotency_keys).where(t.tenant_id == tenant_id, t.key == key, t.owner == owner)
                         .values(status_code=status, body=content))


def _no_bind(conn: Connection, resource: str) -> None:
    """The ``bind`` of a request without a key: nothing to name."""


_encode = msgspec.json.Encoder().encode


def _answer(result: Any, status_code: int | Callable[[Any], int]) -> Response:
    status = status_code(result) if callable(status_code) else status_code
    return Response(content=_encode(result), status_code=status, media_type="application/json")
