"""What the handlers call: API-key checks, the verdict cache, rate limits and the audit write.

One request to ``/v1/screen`` costs one Redis round trip for the rate-limit counter and the cache
lookup together (a Lua script: INCRBY the tenant's window counter, MGET the verdict keys), one more
to store a freshly screened verdict, and a share of one group-committed SQL INSERT for the audit row.
API keys are checked against SQL once and then remembered per process for ``key_cache_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import itertools
import json
import logging
import math
import os
import secrets
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import anyio.to_thread
import msgspec
import redis.asyncio as aioredis
from sqlalchemy import text

from engine import Engine, Message, SmsguardError, Verdict, Versions
from smsguard.settings import Settings
from storage import AuditWriter, KeyInfo, RedisLocation, find_key, get_verdict, locate_redis, make_engine, migrate

from . import _metrics as metrics
from ._schemas import ScreenVerdict, StoredVerdict

log = logging.getLogger("smsguard.api")

# KEYS[1] = the tenant's rate window counter, KEYS[2..] = verdict cache keys; ARGV = cost, window TTL.
_LIMIT_AND_LOOKUP = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if #KEYS > 1 then return {n, redis.call('MGET', unpack(KEYS, 2))} end
return {n, {}}
"""

THREAD_ABOVE = 64  # screen batches larger than this in a worker thread, not on the event loop


class Unauthorized(SmsguardError):
    status_code = 401
    code = "auth.invalid_key"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="smsguard"'}


class Forbidden(SmsguardError):
    status_code = 403
    code = "auth.forbidden"


class NotFound(SmsguardError):
    status_code = 404
    code = "not_found"


class RateLimited(SmsguardError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, where=None)
        self.headers = {"Retry-After": str(retry_after)}


class Unavailable(SmsguardError):
    status_code = 503
    code = "unavailable"


_encode = msgspec.json.Encoder().encode
_decode_verdict = msgspec.json.Decoder(Verdict).decode
_decode_stored = msgspec.json.Decoder(ScreenVerdict).decode
_VERDICT_FIELDS = Verdict.__struct_fields__


_ID_PROCESS = os.urandom(5).hex()
_id_counter = itertools.count(int.from_bytes(os.urandom(4)))


def new_verdict_id() -> str:
    """32 hex characters: milliseconds since the epoch, 40 random bits fixed per process, a 40-bit counter.
    Unique across processes and sortable by time; not secret (a verdict is only shown to its own tenant)."""
    return f"{time.time_ns() // 1_000_000:012x}{_ID_PROCESS}{next(_id_counter) & 0xFFFFFFFFFF:010x}"


def content_hash(versions: Versions, tenant: str, message: Message, content_only: bool) -> str:
    """What decides a verdict, hashed: the exact text, kind, signature, tenant (its policy overrides),
    ``content_only`` and the policy/lexicon/model versions. The text is not folded first, because a
    verdict's reasons carry offsets into the original text; the tenant is part of the key so one
    tenant can never learn from ``cached`` what another screened."""
    raw = _encode(
        (versions.policy, versions.lexicon, versions.model, tenant, message.kind, message.signature, content_only,
         message.text)
    )
    return hashlib.sha256(raw).hexdigest()


def _deciding_category(v: Verdict) -> str:
    for r in v.reasons:
        if r.action == v.decision:
            return r.category
    return "none"


class Service:
    """Everything a running API process holds: the engine, SQL, Redis, the audit writer, the key cache."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.db: Any = None
        self.redis: aioredis.Redis | None = None
        self.writer: AuditWriter | None = None
        self._redis_location: RedisLocation | None = None
        self._script: Any = None
        self._keys: dict[str, tuple[KeyInfo, float]] = {}
        self._listener: asyncio.Task | None = None
        self._pending_sets: list[tuple[str, bytes]] = []
        self._tasks: set[asyncio.Task] = set()
        ns = settings.redis_namespace
        self._verdict_prefix = f"{ns}:v:"
        self._rate_prefix = f"{ns}:rl:"
        self.reload_channel = f"{ns}:reload"

    # -- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        self.db = make_engine(s.sqlalchemy_url)
        await anyio.to_thread.run_sync(migrate, self.db)
        self._redis_location = await anyio.to_thread.run_sync(locate_redis, s.redis_url, s.data_dir)
        self.redis = aioredis.Redis.from_url(self._redis_location.url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self.redis.register_script(_LIMIT_AND_LOOKUP)
        self.writer = AuditWriter(self.db)
        self.writer.start()
        self._listener = asyncio.create_task(self._listen_for_reloads())
        # The engine's tables are large and live for the whole process: move everything that exists now out of
        # the collector's way, so a full collection never walks them in the middle of a request (p99).
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        self._flush_cache_sets()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.writer is not None:
            await anyio.to_thread.run_sync(self.writer.close)
        if self.redis is not None:
            await self.redis.aclose()
        if self._redis_location is not None:
            await anyio.to_thread.run_sync(self._redis_location.close)
        if self.db is not None:
            self.db.dispose()

    # -- API keys --------------------------------------------------------------------------------
    async def authenticate(self, authorization: str | None, x_api_key: str | None) -> KeyInfo:
        if authorization:
            scheme, _, key = authorization.partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise Unauthorized("use 'Authorization: Bearer <key>'", where="header Authorization",
                                   code="auth.malformed")
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
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[digest] = (info, now + self.settings.key_cache_ttl)
        return info

    # -- screening -------------------------------------------------------------------------------
    async def screen(
        self, key: KeyInfo, messages: list[Message], *, content_only: bool, paths: list[str]
    ) -> list[bytes]:
        """Screen ``messages`` for ``key``'s tenant: rate limit, cache, engine, audit. Returns each
        ScreenVerdict as JSON (the bytes answered are the bytes stored). ``paths`` are the JSON paths of
        the messages in the request, for errors."""
        for m, path in zip(messages, paths, strict=True):
            if m.tenant is not None and m.tenant != key.tenant:
                raise SmsguardError(
                    "tenant is set by the API key; leave it out or give the key's own tenant",
                    where=f"{path}.tenant",
                    code="input.tenant_mismatch",
                )
            if not m.text.strip():
                raise SmsguardError("text must not be empty", where=f"{path}.text", code="input.empty_text")
            for name in ("text", "signature", "id"):
                value = getattr(m, name)
                if isinstance(value, str) and "\x00" in value:
                    raise SmsguardError("must not contain NUL (U+0000)", where=f"{path}.{name}", code="input.nul")
        messages = [msgspec.structs.replace(m, tenant=key.tenant) for m in messages]
        versions = self.engine.versions
        hashes = [content_hash(versions, key.tenant, m, content_only) for m in messages]
        unique = list(dict.fromkeys(hashes))

        s = self.settings
        limit = key.rate_limit or s.rate_limit
        now = time.time()
        window = int(now // s.rate_window)
        rate_key = f"{self._rate_prefix}{key.tenant_id}:{window}"
        try:
            count, found = await self._script(
                keys=[rate_key, *(self._verdict_prefix + h for h in unique)], args=[len(messages), s.rate_window * 2]
            )
        except (aioredis.ConnectionError, aioredis.TimeoutError) as e:
            raise Unavailable(f"redis: {e}", code="unavailable.redis") from None
        if count > limit:
            metrics.RATE_LIMITED.inc()
            retry = max(1, math.ceil((window + 1) * s.rate_window - now))
            raise RateLimited(f"tenant {key.tenant!r} is over its limit of {limit} messages per "
                              f"{s.rate_window} s", retry)

        verdicts: dict[str, Verdict] = {}
        for h, raw in zip(unique, found, strict=True):
            if raw is not None:
                verdicts[h] = _decode_verdict(raw)
        misses = [h for h in unique if h not in verdicts]
        if misses:
            first = {h: m for m, h in zip(reversed(messages), reversed(hashes), strict=True)}
            todo = [msgspec.structs.replace(first[h], id=None) for h in misses]
            if len(todo) > THREAD_ABOVE:
                fresh = await anyio.to_thread.run_sync(
                    lambda: self.engine.screen_many(todo, content_only=content_only)
                )
            else:
                fresh = self.engine.screen_many(todo, content_only=content_only)
            for h, v in zip(misses, fresh, strict=True):
                self._cache_later(self._verdict_prefix + h, _encode(v))
            verdicts.update(zip(misses, fresh, strict=True))
        fresh_hashes = set(misses)
        if len(unique) - len(misses):
            metrics.CACHE_HIT.inc(len(unique) - len(misses))
        if misses:
            metrics.CACHE_MISS.inc(len(misses))

        created = datetime.now(UTC)
        out: list[bytes] = []
        rows: list[tuple] = []
        for m, h in zip(messages, hashes, strict=True):
            v = verdicts[h]
            cached = h not in fresh_hashes
            fresh_hashes.discard(h)  # a repeat inside one batch was screened once: it is a cache hit
            fields = {f: getattr(v, f) for f in _VERDICT_FIELDS}
            fields["id"] = m.id
            verdict_id = new_verdict_id()
            body = _encode(ScreenVerdict(**fields, verdict_id=verdict_id, cached=cached))
            out.append(body)
            vv = v.versions
            rows.append(
                (verdict_id, key.tenant_id, created, None if m.id is None else str(m.id)[:200], h, v.decision,
                 v.score, vv.policy, vv.lexicon, vv.model, cached, m.text, body.decode())
            )
            metrics.observe_decision(v.decision, _deciding_category(v))
        try:
            await self.writer.write(rows)
        except Exception as e:
            log.exception("audit write failed")
            raise Unavailable(
                f"could not store the verdicts: {type(e).__name__}", code="unavailable.database"
            ) from None
        metrics.AUDIT_ROWS.inc(len(rows))
        return out

    def _cache_later(self, key: str, value: bytes) -> None:
        """Store a fresh verdict in Redis without making the request wait: all SETs queued during one turn
        of the event loop go out as one pipeline. (A repeat arriving in that same instant is screened again,
        which costs time, not correctness.)"""
        self._pending_sets.append((key, value))
        if len(self._pending_sets) == 1:
            asyncio.get_running_loop().call_soon(self._flush_cache_sets)

    def _flush_cache_sets(self) -> None:
        pending, self._pending_sets = self._pending_sets, []
        if pending:
            task = asyncio.create_task(self._send_sets(pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_sets(self, pending: list[tuple[str, bytes]]) -> None:
        ttl = self.settings.cache_ttl
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for k, v in pending:
                    pipe.set(k, v, ex=ttl)
                await pipe.execute()
        except Exception as e:  # the cache is an optimization: a lost SET means one more screening
            log.warning("verdict cache write failed: %s", e)

    async def stored_verdict(self, key: KeyInfo, verdict_id: str) -> StoredVerdict:
        row = None
        if len(verdict_id) <= 64:
            row = await anyio.to_thread.run_sync(get_verdict, self.db, key.tenant_id, verdict_id)
        if row is None:  # also when it is another tenant's: never tell them apart
            raise NotFound(f"no verdict {verdict_id!r}", where="path verdict_id", code="verdict.not_found")
        sv = _decode_stored(row.verdict)
        fields = {f: getattr(sv, f) for f in ScreenVerdict.__struct_fields__}
        return StoredVerdict(**fields, created_at=_iso(row.created_at), text=row.text)

    # -- readiness and reloads ---------------------------------------------------------------------
    async def check_ready(self) -> tuple[str, str]:
        def ping_db() -> None:
            with self.db.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            with anyio.fail_after(2):
                await anyio.to_thread.run_sync(ping_db)
            database = "ok"
        except Exception as e:
            database = f"error: {type(e).__name__}"
        try:
            with anyio.fail_after(2):
                await self.redis.ping()
            redis_state = "ok"
        except Exception as e:
            redis_state = f"error: {type(e).__name__}"
        return database, redis_state

    async def reload(self, what: list[str]) -> Versions:
        """Reload here, then tell every other process (over Redis pub/sub) to do the same."""
        versions = await anyio.to_thread.run_sync(lambda: self.engine.reload(*what))
        await self.redis.publish(self.reload_channel, json.dumps({"origin": self.origin, "what": what}))
        return versions

    async def _listen_for_reloads(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(self.reload_channel)
                try:
                    async for msg in pubsub.listen():
                        if msg.get("type") != "message":
                            continue
                        data = json.loads(msg["data"])
                        if data.get("origin") == self.origin:
                            continue
                        what = [w for w in data.get("what", []) if w in ("policy", "lexicon", "model")]
                        try:
                            await anyio.to_thread.run_sync(lambda w=what: self.engine.reload(*w))
                            log.info("reloaded %s on another process's request", what or "everything")
                        except SmsguardError as e:
                            log.error("reload requested by another process failed: %s", e)
                finally:
                    await pubsub.aclose()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis went away: try again shortly
                log.warning("reload listener: %s", e)
                await asyncio.sleep(1)


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat()
