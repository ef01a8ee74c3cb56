"""What the handlers call: API-key checks, the verdict cache, rate limits and the audit write.

A repeated message is usually answered without any Redis round trip: each process keeps the most
recent verdicts in a small LRU (same content-hash key as Redis, so tenant and versions are part of it)
and spends rate-limit tokens it leased from the tenant's shared Redis window counter in blocks. When the
LRU misses or the lease is used up, one Redis round trip does both (a Lua script: INCRBY the tenant's
window counter, MGET the verdict keys); a freshly screened verdict is stored without waiting; every
answer waits for its share of one group-committed SQL INSERT (the audit row).
API keys are checked against SQL once and then remembered per process for ``key_cache_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import hashlib
import itertools
import json
import logging
import math
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import msgspec
import redis.asyncio as aioredis
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import text

from smsguard.audit import (
    AuditEvent,
    AuditWriter,
    EventFilter,
    anchors_from,
    append_many,
    phone_hash,
    record_export,
    schedule_of,
    stream_events,
)
from smsguard.audit import checkpoint as audit_checkpoint
from smsguard.audit._shadow import shadow_diff
from smsguard.audit._versions import record_in_force, reload_candidate
from smsguard.core import (
    ConflictError,
    ForbiddenError,
    LimitError,
    NotFoundError,
    Settings,
    SmsguardError,
    UnauthenticatedError,
    UnavailableError,
)
from smsguard.engine import Engine, Message, Verdict, Versions, content_hash
from smsguard.review import api_review_status
from smsguard.runtime import Runtime
from smsguard.storage import TOUCH_EVERY, KeyInfo, find_key, get_tenant, get_verdict, touch_key

from . import _metrics as metrics
from ._schemas import ReviewState, ScreenVerdict, StoredVerdict

log = logging.getLogger("smsguard.api")

# KEYS[1] = the tenant's rate window counter, KEYS[2..] = verdict cache keys; ARGV = cost, window TTL.
_LIMIT_AND_LOOKUP = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if #KEYS > 1 then return {n, redis.call('MGET', unpack(KEYS, 2))} end
return {n, {}}
"""

# What is screened on the event loop itself; the rest goes to a thread (Service._screen_many). The engine
# runs at about 1 µs per character on this machine class (bench/engine.py), so this bounds a loop stall
# near 2 ms; measured in bench/loop_lag.py.
INLINE_MESSAGES = 16
INLINE_CHARS = 2_000
LOCAL_VERDICTS = 4096  # per-process LRU of recent verdicts in front of Redis
LEASE_MAX = 100  # rate-limit tokens leased from Redis at once: min(limit // 10, LEASE_MAX), at least 1


class Unauthorized(UnauthenticatedError):
    code = "auth.invalid_key"


class RateLimited(LimitError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, where=None, retry_after=retry_after)


class Unavailable(UnavailableError):
    code = "unavailable"


_encode = msgspec.json.Encoder().encode
_decode_verdict = msgspec.json.Decoder(Verdict).decode
_decode_stored = msgspec.json.Decoder(ScreenVerdict).decode
_ID_NULL = b'{"id":null,'  # Verdict's first field is ``id``: what a cached verdict (screened with id=None) starts with
assert Verdict.__struct_fields__[0] == "id" and ScreenVerdict.__struct_fields__[-2:] == ("verdict_id", "cached")


class _Reasonlet(msgspec.Struct):
    category: str
    action: str


class _VerdictHead(msgspec.Struct):
    """The few fields of a cached verdict that the audit row and the metrics need (decoded without the rest)."""

    decision: str
    score: float
    versions: Versions
    reasons: list[_Reasonlet]


_decode_head = msgspec.json.Decoder(_VerdictHead).decode


class _Cached(msgspec.Struct, frozen=True, gc=False):
    """A verdict ready to answer: its JSON after ``{"id":null,`` without the closing brace, plus the fields the
    audit row and the metrics need. The answer is spliced from it (no decode/encode per request). Not tracked by
    the garbage collector (it only holds bytes, str and float): thousands of them live in the LRU, and full
    collections walking them would show in p99 (see ``gc.freeze`` in ``start``)."""

    tail: bytes
    decision: str
    score: float
    policy: str
    lexicon: str
    model: str
    category: str

    @classmethod
    def from_json(cls, raw: bytes, v: Verdict | _VerdictHead | None = None) -> _Cached:
        if not raw.startswith(_ID_NULL):  # not what this module stores (id=None first): normalize it
            full = _decode_verdict(raw)
            raw = _encode(msgspec.structs.replace(full, id=None))
            v = full
        if v is None:
            v = _decode_head(raw)
        vv = v.versions
        return cls(raw[len(_ID_NULL):-1], v.decision, v.score, vv.policy, vv.lexicon, vv.model, _deciding_category(v))

    def answer(self, message_id: str | int | None, verdict_id: str, cached: bool) -> bytes:
        """The ScreenVerdict JSON, byte for byte what ``_encode(ScreenVerdict(...))`` gives."""
        return b"".join((b'{"id":', _encode(message_id), b",", self.tail, b',"verdict_id":"', verdict_id.encode(),
                         b'","cached":true}' if cached else b'","cached":false}'))


_ID_PROCESS = os.urandom(5).hex()
_id_counter = itertools.count(int.from_bytes(os.urandom(4)))


def new_verdict_id() -> str:
    """32 hex characters: milliseconds since the epoch, 40 random bits fixed per process, a 40-bit counter.
    Unique across processes and sortable by time; not secret (a verdict is only shown to its own tenant)."""
    return f"{time.time_ns() // 1_000_000:012x}{_ID_PROCESS}{next(_id_counter) & 0xFFFFFFFFFF:010x}"


def _deciding_category(v: Verdict | _VerdictHead) -> str:
    for r in v.reasons:
        if r.action == v.decision:
            return r.category
    return "none"


@dataclasses.dataclass(slots=True)
class _Lease:
    """Rate-limit tokens this process leased from a tenant's shared window counter and has not spent yet."""

    window: int
    tokens: int = 0
    refill: asyncio.Future | None = None  # set while a request is leasing more
    exhausted: bool = False  # the shared counter reached the limit: nothing more can be granted in this window


class Service:
    """What the API handlers call, on the process's Runtime (SQL, Redis, the engine, the verdict writer): API
    keys and their cache, rate limits, the verdict cache, reloads, audit exports."""

    def __init__(self, runtime: Runtime, *, owns_runtime: bool = False) -> None:
        self.runtime = runtime
        self.engine: Engine = runtime.screening
        self.settings: Settings = runtime.settings
        self._owns_runtime = owns_runtime  # create_app opened it: close it on shutdown
        self.origin = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.db: SqlEngine | None = None
        self.redis: aioredis.Redis | None = None
        self.writer: AuditWriter | None = None
        self._script: Any = None
        self._keys: dict[str, tuple[KeyInfo, float]] = {}
        self._touched: dict[int, float] = {}  # key id → when this process last wrote its last_used_at
        self._listener: asyncio.Task | None = None
        self._checkpointer: asyncio.Task | None = None
        self._pending_sets: list[tuple[str, bytes]] = []
        self._local: OrderedDict[str, _Cached] = OrderedDict()  # content hash -> verdict, most recent last
        self._leases: dict[int, _Lease] = {}  # tenant id -> tokens leased from the shared window counter
        self._tasks: set[asyncio.Task] = set()
        self._screen_limiter: anyio.CapacityLimiter | None = None  # screening threads (see _screen_many)
        self._pending_screens: dict[bool, list[tuple[list[Message], asyncio.Future]]] = {}  # _screen_together
        ns = self.settings.redis_namespace
        self._verdict_prefix = f"{ns}:v:"
        self._rate_prefix = f"{ns}:rl:"
        self.reload_channel = f"{ns}:reload"

    # -- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        rt = self.runtime
        await anyio.to_thread.run_sync(rt.open)
        self.db = rt.db
        self.redis = rt.aredis
        self._script = self.redis.register_script(_LIMIT_AND_LOOKUP)
        # uncertain verdicts wait for a human: their review items commit with the verdict rows
        self.writer = await anyio.to_thread.run_sync(lambda: rt.verdict_writer)
        await anyio.to_thread.run_sync(self._record_versions)
        self._listener = asyncio.create_task(self._listen_for_reloads())
        self._checkpointer = asyncio.create_task(self._checkpoint_loop())
        # The engine's tables are large and live for the whole process: move everything that exists now out of
        # the collector's way, so a full collection never walks them in the middle of a request (p99).
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        self._flush_cache_sets()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in (self._listener, self._checkpointer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._owns_runtime:
            await self.runtime.aclose()

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
        if now - self._touched.get(info.key_id, -TOUCH_EVERY) >= TOUCH_EVERY:  # "last used" in the console
            self._touched[info.key_id] = now
            if len(self._touched) > 10_000:
                self._touched.clear()
            try:
                await anyio.to_thread.run_sync(touch_key, self.db, info.key_id)
            except Exception:  # bookkeeping: a locked database must not refuse the request
                log.warning("could not record the use of key %s", info.prefix, exc_info=True)
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
                raise ForbiddenError(  # 403: well-formed, but this key may not act for that tenant
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

        local = self._local
        entries: dict[str, _Cached] = {}
        for h in unique:
            e = local.get(h)
            if e is not None:
                local.move_to_end(h)
                entries[h] = e
        lookups = [h for h in unique if h not in entries]
        found = await self._admit(key, len(messages), [self._verdict_prefix + h for h in lookups])
        # admitted: from here on every hash is answered and counted
        for h, raw in zip(lookups, found, strict=True):
            if raw is not None:
                entries[h] = self._remember(h, _Cached.from_json(raw))
        misses = [h for h in unique if h not in entries]
        if misses:
            first = {h: m for m, h in zip(reversed(messages), reversed(hashes), strict=True)}
            todo = [msgspec.structs.replace(first[h], id=None) for h in misses]
            fresh = await self._screen_together(todo, content_only)
            for h, v in zip(misses, fresh, strict=True):
                raw = _encode(v)  # v.id is None: the stored form starts with {"id":null,
                self._cache_later(self._verdict_prefix + h, raw)
                entries[h] = self._remember(h, _Cached.from_json(raw, v))
        fresh_hashes = set(misses)
        if len(unique) - len(misses):
            metrics.CACHE_HIT.inc(len(unique) - len(misses))
        if misses:
            metrics.CACHE_MISS.inc(len(misses))

        created = datetime.now(UTC)
        out: list[bytes] = []
        rows: list[tuple] = []
        for m, h in zip(messages, hashes, strict=True):
            e = entries[h]
            cached = h not in fresh_hashes
            fresh_hashes.discard(h)  # a repeat inside one batch was screened once: it is a cache hit
            verdict_id = new_verdict_id()
            body = e.answer(m.id, verdict_id, cached)
            out.append(body)
            rows.append(
                (verdict_id, key.tenant_id, created, None if m.id is None else str(m.id)[:200], h, e.decision,
                 e.score, e.policy, e.lexicon, e.model, cached, m.text, body.decode())
            )
            metrics.observe_decision(e.decision, e.category)
        try:
            await self.writer.write(rows, actor=f"key:{key.prefix}")
        except Exception as e:
            log.exception("audit write failed")
            raise Unavailable(
                f"could not store the verdicts: {type(e).__name__}", code="unavailable.database"
            ) from None
        metrics.AUDIT_ROWS.inc(len(rows))
        return out

    async def _screen_together(self, todo: list[Message], content_only: bool) -> list[Verdict]:
        """Screen ``todo`` in one engine call with the other requests that reach this point in the same turn of the
        event loop: the engine's per-call costs (the classifier above all: a fifth of a loaded server's time in
        bench/api_profile.py) are then paid once for all of them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Verdict]] = loop.create_future()
        pending = self._pending_screens.setdefault(content_only, [])
        pending.append((todo, future))
        if len(pending) == 1:
            loop.call_soon(self._flush_screens, content_only)
        return await future

    def _flush_screens(self, content_only: bool) -> None:
        group = self._pending_screens.pop(content_only, [])
        task = asyncio.create_task(self._screen_group(group, content_only))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _screen_group(self, group: list[tuple[list[Message], asyncio.Future]], content_only: bool) -> None:
        try:
            verdicts = await self._screen_many([m for todo, _ in group for m in todo], content_only)
        except Exception as e:
            if len(group) == 1:
                if not group[0][1].done():
                    group[0][1].set_exception(e)
                return
            for todo, future in group:  # one request's error stays its own: screen each alone
                try:
                    result = await self._screen_many(todo, content_only)
                except Exception as e:
                    if not future.done():
                        future.set_exception(e)
                else:
                    if not future.done():
                        future.set_result(result)
            return
        at = 0
        for todo, future in group:
            if not future.done():
                future.set_result(verdicts[at : at + len(todo)])
            at += len(todo)

    async def _screen_many(self, todo: list[Message], content_only: bool) -> list[Verdict]:
        """Screen on the event loop only what takes well under a millisecond (a few short messages: a thread hop
        would cost more than the screening); anything larger goes to the screening threads, so one large
        message or batch never holds the loop (issue 15). The threads are as many as the cores: more would
        only queue for the GIL and the cores."""
        if len(todo) <= INLINE_MESSAGES and sum(len(m.text) for m in todo) <= INLINE_CHARS:
            return self.engine.screen_many(todo, content_only=content_only)
        if self._screen_limiter is None:  # made here, inside the running loop it belongs to
            # one thread per core (anyio's default limiter has 40 and is shared with every SQL call)
            self._screen_limiter = anyio.CapacityLimiter(os.cpu_count() or 1)
        return await anyio.to_thread.run_sync(
            lambda: self.engine.screen_many(todo, content_only=content_only), limiter=self._screen_limiter
        )

    def _remember(self, h: str, entry: _Cached) -> _Cached:
        self._local[h] = entry
        if len(self._local) > LOCAL_VERDICTS:
            self._local.popitem(last=False)
        return entry

    async def _admit(self, key: KeyInfo, cost: int, lookups: list[str]) -> list[bytes | None]:
        """Spend ``cost`` of the tenant's rate limit (raise RateLimited when over it) and GET the verdict keys
        ``lookups``. Tokens come from a local lease when it has enough; otherwise one Redis round trip leases a
        block from the tenant's shared window counter (INCRBY, all processes share it) and does the GETs too.
        Only tokens under the limit are ever granted, so all processes together never admit more than the limit;
        the price is that up to one block (min(limit // 10, LEASE_MAX) - 1 tokens) per process per window may stay
        unspent in one process while another is refused. Limits under 20 lease one token at a time (exact). Once
        the shared counter has reached the limit, this process refuses the rest of the window without asking Redis
        (its counter is already over the limit, so counting those refusals there would change nothing)."""
        s = self.settings
        limit = key.rate_limit or s.rate_limit
        block = max(1, min(limit // 10, LEASE_MAX))
        while True:
            now = time.time()
            window = int(now // s.rate_window)
            lease = self._leases.get(key.tenant_id)
            if lease is None or lease.window != window:
                if len(self._leases) > 10_000:
                    self._leases.clear()
                lease = self._leases[key.tenant_id] = _Lease(window)
            if lease.tokens >= cost:
                lease.tokens -= cost
                if not lookups:
                    return []
                try:
                    return await self.redis.mget(lookups)
                except (aioredis.ConnectionError, aioredis.TimeoutError) as e:
                    raise Unavailable(f"redis: {e}", code="unavailable.redis") from None
            if lease.exhausted:  # counting this refusal in Redis too would change nothing: refuse it here
                raise self._refused(key, limit, window, now)
            if lease.refill is None:
                break
            await asyncio.shield(lease.refill)  # another request is leasing for this tenant: use its block
        have, lease.tokens = lease.tokens, 0
        need = cost - have
        grab = max(need, block)
        lease.refill = asyncio.get_running_loop().create_future()
        rate_key = f"{self._rate_prefix}{key.tenant_id}:{window}"
        try:
            count, found = await self._script(keys=[rate_key, *lookups], args=[grab, s.rate_window * 2])
        except (aioredis.ConnectionError, aioredis.TimeoutError) as e:
            lease.tokens += have
            raise Unavailable(f"redis: {e}", code="unavailable.redis") from None
        finally:
            lease.refill.set_result(None)
            lease.refill = None
        granted = max(0, min(grab, limit - (count - grab)))  # the part of this INCRBY that is under the limit
        if count >= limit:
            lease.exhausted = True
        if granted < need:
            # refused: like the whole cost, the tokens it took (``have`` and ``granted``) stay spent
            raise self._refused(key, limit, window, now)
        lease.tokens += granted - need
        return found

    def _refused(self, key: KeyInfo, limit: int, window: int, now: float) -> RateLimited:
        s = self.settings
        metrics.RATE_LIMITED.inc()
        retry = max(1, math.ceil((window + 1) * s.rate_window - now))
        return RateLimited(f"tenant {key.tenant!r} is over its limit of {limit} messages per {s.rate_window} s",
                           retry)

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
            raise NotFoundError(f"no verdict {verdict_id!r}", where="path verdict_id", code="verdict.not_found")
        sv = _decode_stored(row.verdict)
        fields = {f: getattr(sv, f) for f in ScreenVerdict.__struct_fields__}
        human = await anyio.to_thread.run_sync(api_review_status, self.db, verdict_id)
        return StoredVerdict(**fields, created_at=_iso(row.created_at), text=row.text,
                             review=ReviewState(**human) if human else None)

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

    async def reload(self, what: list[str], actor: str = "api") -> Versions:
        """Reload here, record a ``policy``/``lexicon``/``model`` audit event per part whose version changed (or
        was asked for), then tell every other process (over Redis pub/sub) to do the same."""
        before = self.engine.versions
        shadow: dict[str, object] = {}
        if self.settings.reload_max_flip_rate is not None:
            shadow = await anyio.to_thread.run_sync(self._shadow_gate, what)
        versions = await anyio.to_thread.run_sync(lambda: self.engine.reload(*what))
        await anyio.to_thread.run_sync(self._record_versions)
        parts = what or ["policy", "lexicon", "model"]
        gated = shadow.get("candidate")
        if isinstance(gated, dict) and any(gated[p] != getattr(versions, p) for p in parts):
            # a file changed between the replay and the reload: the event says so rather than vouch for it
            log.warning("reload: the versions promoted %s are not the candidate the gate replayed %s", versions, gated)
            shadow["promoted_other_than_replayed"] = True
        changes = [
            AuditEvent(event_type=part, actor=actor, tenant_id=None, subject=part,
                       payload={"from": getattr(before, part), "to": getattr(versions, part), "action": "reload"}
                       | ({"shadow": shadow} if shadow else {}))
            for part in parts
        ]
        await anyio.to_thread.run_sync(self._append_events, changes)
        await self.redis.publish(self.reload_channel, json.dumps({"origin": self.origin, "what": what}))
        return versions

    def _record_versions(self) -> None:
        """Keep the bytes of the versions now in force, for ``smsguard audit replay`` (never fatal to serving)."""
        try:
            record_in_force(self.db, self.engine)
        except Exception as e:
            log.warning("could not record the engine versions for replay: %s", e)

    def _shadow_gate(self, what: list[str]) -> dict[str, object]:
        """Refuse a reload whose candidate would change more than ``reload_max_flip_rate`` of the decisions
        stored in the last ``reload_diff_days`` (at most the newest ``reload_diff_max``; shadow mode, see
        ``smsguard policy diff``). Returns the figures, for the reload's audit events.

        The candidate is what the reload would build: the parts in ``what`` from the files as they are now, the
        others as in force (from the version store)."""
        s = self.settings
        candidate = reload_candidate(self.db, self.engine, what)
        report = shadow_diff(self.db, candidate, since=datetime.now(UTC) - timedelta(days=s.reload_diff_days),
                             newest=s.reload_diff_max, keep=0)
        limit = s.reload_max_flip_rate or 0.0
        figures: dict[str, object] = {"replayed": report.replayed, "changed": report.changed,
                                      "flip_rate": round(report.flip_rate, 6), "max_flip_rate": limit,
                                      "candidate": report.candidate}
        if report.flip_rate > limit:
            by = ", ".join(f"{t} {a}->{b} {code}: {n}" for (t, a, b, _, code), n in report.groups.most_common(5))
            raise ConflictError(
                f"the candidate changes {report.changed} of {report.replayed} decisions of the last "
                f"{s.reload_diff_days:g} days ({report.flip_rate:.2%}), over the allowed "
                f"{limit:.2%} (most changed: {by}): inspect with `smsguard policy diff` and reload again "
                "when intended",
                where="SMSGUARD_RELOAD_MAX_FLIP_RATE", code="reload.flip_rate")
        return figures

    def _append_events(self, batch: list[AuditEvent]) -> None:
        with self.db.begin() as conn:
            append_many(conn, batch)

    # -- audit log -----------------------------------------------------------------------------------
    async def audit_export(
        self, key: KeyInfo, flt: EventFilter, fmt: str, *, tenant: str | None, what: str
    ) -> Iterator[bytes]:
        """Check the key's role, record the export as an event (committed first), return the byte stream.
        ``auditor`` keys read their own tenant with numbers masked; ``auditor_full`` keys any tenant, unmasked."""
        if key.role not in ("auditor", "auditor_full"):
            raise ForbiddenError("the audit log needs an auditor key (smsguard key create --role auditor)",
                            where="header Authorization", code="auth.forbidden")
        if tenant is not None:
            if key.role == "auditor" and tenant != key.tenant:
                raise ForbiddenError("an auditor key reads its own tenant's events only", where="query tenant",
                                     code="auth.forbidden")
            info = await anyio.to_thread.run_sync(get_tenant, self.db, tenant)
            flt = dataclasses.replace(flt, tenant_id=info.id)
        elif key.role == "auditor":
            flt = dataclasses.replace(flt, tenant_id=key.tenant_id)
        unmask = key.role == "auditor_full"
        await anyio.to_thread.run_sync(
            lambda: record_export(self.db, actor=f"key:{key.prefix}", tenant_id=key.tenant_id, flt=flt, fmt=fmt,
                                  unmask=unmask, what=what)
        )
        return stream_events(self.db, flt, fmt, unmask=unmask)  # type: ignore[arg-type]

    def phone_ref(self, number: str) -> str:
        return phone_hash(number, self.runtime.secrets.phone_hash_key)

    async def _checkpoint_loop(self) -> None:
        """Sign the chain head when due (policy.yaml ``audit.checkpoint_minutes`` / ``checkpoint_events``, judged
        from the newest checkpoint in SQL, so a restart does not reset the clock) and anchor it outside SQL."""
        while True:
            schedule = schedule_of(self.engine.policy.audit)
            await asyncio.sleep(min(30.0, schedule.every_minutes * 60))
            try:
                await anyio.to_thread.run_sync(
                    lambda s=schedule: audit_checkpoint(self.db, self.runtime.secrets.audit_signing_key,
                                                        anchors=anchors_from(self.settings), schedule=s)
                )
            except Exception as e:  # a missed checkpoint is logged, never fatal to screening
                log.warning("audit checkpoint failed: %s", e)

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
