"""What the handlers call: screening (with the verdict cache and rate limits), stored verdicts, readiness,
reloads and the audit log.

A screened message goes: rate limit (``_rate_limit``: from the process's lease, else one Redis round trip that
also does the cache lookups) and cache lookup (``_verdict_cache``: the process's LRU, else one Redis pipeline per
turn of the event loop), the engine for what was not cached (one call per turn), then every answer waits for its
share of one group-committed SQL INSERT (the audit row; handed to the writer once per turn). API keys: ``_auth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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
    NotFoundError,
    Settings,
    SmsguardError,
)
from smsguard.engine import Engine, Message, Verdict, Versions, content_hash
from smsguard.review import api_review_status
from smsguard.runtime import Runtime
from smsguard.storage import KeyInfo, get_tenant, get_verdict

from . import _metrics as metrics
from ._auth import KeyCheck
from ._rate_limit import RateLimiter, Unavailable
from ._schemas import ReviewState, ScreenVerdict, StoredVerdict
from ._verdict_cache import Cached, VerdictCache

log = logging.getLogger("smsguard.api")

# What is screened on the event loop itself; the rest goes to a thread (Service._screen_many). The engine
# runs at about 1 µs per character on this machine class (bench/engine.py), so this bounds a loop stall
# near 2 ms; measured in bench/loop_lag.py.
INLINE_MESSAGES = 16
INLINE_CHARS = 2_000
_encode = msgspec.json.Encoder().encode
_decode_stored = msgspec.json.Decoder(ScreenVerdict).decode

_ID_PROCESS = os.urandom(5).hex()
_id_counter = itertools.count(int.from_bytes(os.urandom(4)))


def new_verdict_id() -> str:
    """32 hex characters: milliseconds since the epoch, 40 random bits fixed per process, a 40-bit counter.
    Unique across processes and sortable by time; not secret (a verdict is only shown to its own tenant)."""
    return f"{time.time_ns() // 1_000_000:012x}{_ID_PROCESS}{next(_id_counter) & 0xFFFFFFFFFF:010x}"


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
        self._listener: asyncio.Task | None = None
        self._checkpointer: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._screen_limiter: anyio.CapacityLimiter | None = None  # screening threads (see _screen_many)
        self._pending_screens: dict[bool, list[tuple[list[Message], asyncio.Future]]] = {}  # _screen_together
        self._pending_rows: list[tuple[list[tuple], str, asyncio.Future[None]]] = []  # _write_together
        s = self.settings
        ns = s.redis_namespace
        self.keys = KeyCheck(s.key_cache_ttl)
        self.limits = RateLimiter(default=s.rate_limit, window=s.rate_window, prefix=f"{ns}:rl:")
        self.cache = VerdictCache(prefix=f"{ns}:v:", ttl=s.cache_ttl)
        self.reload_channel = f"{ns}:reload"

    # -- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        rt = self.runtime
        await anyio.to_thread.run_sync(rt.open)
        self.db = rt.db
        self.redis = rt.aredis
        self.keys.db = self.db
        self.limits.bind(self.redis)
        self.cache.bind(self.redis)
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
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.cache.aclose()
        for task in (self._listener, self._checkpointer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._owns_runtime:
            await self.runtime.aclose()

    # -- API keys --------------------------------------------------------------------------------
    async def authenticate(self, authorization: str | None, x_api_key: str | None) -> KeyInfo:
        return await self.keys.authenticate(authorization, x_api_key)

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

        cache = self.cache
        entries: dict[str, Cached] = {}
        for h in unique:
            e = cache.local(h)
            if e is not None:
                entries[h] = e
        lookups = [h for h in unique if h not in entries]
        if self.limits.take(key, len(messages)):  # paid from this process's lease: no Redis, no await
            found = await cache.fetch(lookups) if lookups else []
        else:  # one round trip leases more tokens (or refuses) and does the lookups
            found = await self.limits.admit(key, len(messages), [cache.prefix + h for h in lookups])
        # admitted: from here on every hash is answered and counted
        for h, raw in zip(lookups, found, strict=True):
            if raw is not None:
                entries[h] = cache.remember(h, Cached.from_json(raw))
        misses = [h for h in unique if h not in entries]
        if misses:
            first = {h: m for m, h in zip(reversed(messages), reversed(hashes), strict=True)}
            todo = [msgspec.structs.replace(first[h], id=None) for h in misses]
            fresh = await self._screen_together(todo, content_only)
            for h, v in zip(misses, fresh, strict=True):
                entries[h] = cache.store(h, v)
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
                (
                    verdict_id,
                    key.tenant_id,
                    created,
                    None if m.id is None else str(m.id)[:200],
                    h,
                    e.decision,
                    e.score,
                    e.policy,
                    e.lexicon,
                    e.model,
                    cached,
                    m.text,
                    body.decode(),
                )
            )
            metrics.observe_decision(e.decision, e.category)
        try:
            await self._write_together(rows, f"key:{key.prefix}")
        except Exception as e:
            log.exception("audit write failed")
            raise Unavailable(
                f"could not store the verdicts: {type(e).__name__}", code="unavailable.database"
            ) from None
        return out

    async def _write_together(self, rows: list[tuple], actor: str) -> None:
        """Return once ``rows`` are committed (raise what the commit raised), handing them to the verdict writer
        together with the rows of every request that reaches this point in the same turn of the event loop: one
        hand-over to the writer thread (queue put, thread wake-up, loop wake-up) per turn instead of per request."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending_rows.append((rows, actor, future))
        if len(self._pending_rows) == 1:
            loop.call_soon(self._flush_rows)
        await future

    def _flush_rows(self) -> None:
        group, self._pending_rows = self._pending_rows, []
        by_actor: dict[str, list[tuple[list[tuple], asyncio.Future[None]]]] = {}
        for rows, actor, future in group:
            by_actor.setdefault(actor, []).append((rows, future))
        for actor, items in by_actor.items():
            task = asyncio.create_task(self._write_group(items, actor))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write_group(self, items: list[tuple[list[tuple], asyncio.Future[None]]], actor: str) -> None:
        try:
            await self.writer.write([row for rows, _ in items for row in rows], actor=actor)
        except Exception as e:
            if len(items) == 1:
                if not items[0][1].done():
                    items[0][1].set_exception(e)
                return
            for rows, future in items:  # one request's bad row must not fail the others: each alone
                try:
                    await self.writer.write(rows, actor=actor)
                except Exception as each:
                    if not future.done():
                        future.set_exception(each)
                else:
                    metrics.AUDIT_ROWS.inc(len(rows))
                    if not future.done():
                        future.set_result(None)
            return
        metrics.AUDIT_ROWS.inc(sum(len(rows) for rows, _ in items))  # once per commit, not per request
        for _, future in items:
            if not future.done():
                future.set_result(None)

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

    async def stored_verdict(self, key: KeyInfo, verdict_id: str) -> StoredVerdict:
        row = None
        if len(verdict_id) <= 64:
            row = await anyio.to_thread.run_sync(get_verdict, self.db, key.tenant_id, verdict_id)
        if row is None:  # also when it is another tenant's: never tell them apart
            raise NotFoundError(f"no verdict {verdict_id!r}", where="path verdict_id", code="verdict.not_found")
        sv = _decode_stored(row.verdict)
        fields = {f: getattr(sv, f) for f in ScreenVerdict.__struct_fields__}
        human = await anyio.to_thread.run_sync(api_review_status, self.db, verdict_id)
        return StoredVerdict(
            **fields, created_at=_iso(row.created_at), text=row.text, review=ReviewState(**human) if human else None
        )

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
            raise ForbiddenError(
                "the audit log needs an auditor key (smsguard key create --role auditor)",
                where="header Authorization",
                code="auth.forbidden",
            )
        if tenant is not None:
            if key.role == "auditor" and tenant != key.tenant:
                raise ForbiddenError(
                    "an auditor key reads its own tenant's events only", where="query tenant", code="auth.forbidden"
                )
            info = await anyio.to_thread.run_sync(get_tenant, self.db, tenant)
            flt = dataclasses.replace(flt, tenant_id=info.id)
        elif key.role == "auditor":
            flt = dataclasses.replace(flt, tenant_id=key.tenant_id)
        unmask = key.role == "auditor_full"
        await anyio.to_thread.run_sync(
            lambda: record_export(
                self.db, actor=f"key:{key.prefix}", tenant_id=key.tenant_id, flt=flt, fmt=fmt, unmask=unmask, what=what
            )
        )
        return stream_events(self.db, flt, fmt, unmask=unmask)  # type: ignore[arg-type]

    def phone_ref(self, number: str) -> str:
        return phone_hash(number, self.runtime.secrets.phone_hash_key)

    async def _checkpoint_loop(self) -> None:
        """Sign the chain head when due (policy.yaml ``audit.checkpoint_minutes`` / ``checkpoint_events``, judged
        from the newest checkpoint in SQL, so a restart does not reset the clock) and anchor it outside SQL."""
        while True:
            schedule = schedule_of(self.runtime.policy.audit)
            await asyncio.sleep(min(30.0, schedule.every_minutes * 60))
            try:
                await anyio.to_thread.run_sync(
                    lambda s=schedule: audit_checkpoint(
                        self.db, self.runtime.secrets.audit_signing_key, anchors=anchors_from(self.settings), schedule=s
                    )
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
