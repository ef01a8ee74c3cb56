"""The verdict cache: a small per-process LRU in front of Redis, and answers spliced from cached JSON.

A repeated message is usually answered without any Redis round trip: each process keeps the most recent
verdicts in an LRU (same content-hash key as Redis, so tenant and versions are part of it). What the LRU does not
hold is looked up in Redis together with every other request's lookups of the same turn of the event loop: one
pipeline per turn carries one MGET for all of them and the SETs of the verdicts screened since the last one. A
freshly screened verdict is stored in Redis without making the request wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import msgspec
import redis.asyncio as aioredis

from smsguard.engine import Verdict, Versions

from ._rate_limit import Unavailable
from ._schemas import ScreenVerdict

log = logging.getLogger("smsguard.api")

LOCAL_VERDICTS = 4096  # per-process LRU of recent verdicts in front of Redis
SET_DELAY = 0.002  # seconds a fresh verdict's SET waits for a lookup pipeline to ride along with

_encode = msgspec.json.Encoder().encode
_decode_verdict = msgspec.json.Decoder(Verdict).decode
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


class Cached(msgspec.Struct, frozen=True, gc=False):
    """A verdict ready to answer: its JSON after ``{"id":null,`` without the closing brace, plus the fields the
    audit row and the metrics need. The answer is spliced from it (no decode/encode per request). Not tracked by
    the garbage collector (it only holds bytes, str and float): thousands of them live in the LRU, and full
    collections walking them would show in p99 (see ``gc.freeze`` in ``Service.start``)."""

    tail: bytes
    decision: str
    score: float
    policy: str
    lexicon: str
    model: str
    category: str

    @classmethod
    def from_json(cls, raw: bytes, v: Verdict | _VerdictHead | None = None) -> Cached:
        if not raw.startswith(_ID_NULL):  # not what this module stores (id=None first): normalize it
            full = _decode_verdict(raw)
            raw = _encode(msgspec.structs.replace(full, id=None))
            v = full
        if v is None:
            v = _decode_head(raw)
        vv = v.versions
        return cls(raw[len(_ID_NULL) : -1], v.decision, v.score, vv.policy, vv.lexicon, vv.model, _deciding_category(v))

    def answer(self, message_id: str | int | None, verdict_id: str, cached: bool) -> bytes:
        """The ScreenVerdict JSON, byte for byte what ``_encode(ScreenVerdict(...))`` gives."""
        return b"".join(
            (
                b'{"id":',
                _encode(message_id),
                b",",
                self.tail,
                b',"verdict_id":"',
                verdict_id.encode(),
                b'","cached":true}' if cached else b'","cached":false}',
            )
        )


def _deciding_category(v: Verdict | _VerdictHead) -> str:
    for r in v.reasons:
        if r.action == v.decision:
            return r.category
    return "none"


class VerdictCache:
    """The process's LRU of verdicts by content hash, and the queue of fresh verdicts still to store in Redis
    under ``prefix`` + hash for ``ttl`` seconds."""

    def __init__(self, *, prefix: str, ttl: int) -> None:
        self.prefix = prefix  # "<namespace>:v:"
        self.ttl = ttl
        self._redis: aioredis.Redis | None = None
        self._local: OrderedDict[str, Cached] = OrderedDict()  # content hash -> verdict, most recent last
        self._pending_sets: list[tuple[str, bytes]] = []
        self._pending_gets: list[tuple[list[str], asyncio.Future[list[bytes | None]]]] = []
        self._tasks: set[asyncio.Task] = set()

    def bind(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    def local(self, h: str) -> Cached | None:
        """The verdict this process remembers for content hash ``h`` (now the most recent), or None."""
        e = self._local.get(h)
        if e is not None:
            self._local.move_to_end(h)
        return e

    def remember(self, h: str, entry: Cached) -> Cached:
        self._local[h] = entry
        if len(self._local) > LOCAL_VERDICTS:
            self._local.popitem(last=False)
        return entry

    def store(self, h: str, verdict: Verdict) -> Cached:
        """Remember a freshly screened verdict (``verdict.id`` is None) here and, soon, in Redis."""
        raw = _encode(verdict)  # the stored form starts with {"id":null,
        self._cache_later(self.prefix + h, raw)
        return self.remember(h, Cached.from_json(raw, verdict))

    async def fetch(self, hashes: list[str]) -> list[bytes | None]:
        """The Redis values of content hashes ``hashes`` (None where absent), fetched in one pipeline with the
        lookups of every request that asks in the same turn of the event loop (and the SETs queued by then).
        Raises ``unavailable.redis`` when Redis cannot be reached."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bytes | None]] = loop.create_future()
        self._pending_gets.append((hashes, future))
        if len(self._pending_gets) == 1:
            loop.call_soon(self._flush_gets)
        return await future

    def _flush_gets(self) -> None:
        gets, self._pending_gets = self._pending_gets, []
        sets, self._pending_sets = self._pending_sets, []  # ride along: one round trip for both
        if gets or sets:
            self._track(asyncio.create_task(self._send_gets(gets, sets)))

    async def _send_gets(
        self, gets: list[tuple[list[str], asyncio.Future[list[bytes | None]]]], sets: list[tuple[str, bytes]]
    ) -> None:
        keys = list(dict.fromkeys(self.prefix + h for hashes, _ in gets for h in hashes))
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for k, v in sets:
                    pipe.set(k, v, ex=self.ttl)
                if keys:
                    pipe.mget(keys)
                results = await pipe.execute(raise_on_error=False)
        except (aioredis.ConnectionError, aioredis.TimeoutError) as e:
            error = Unavailable(f"redis: {e}", code="unavailable.redis")
            for _, future in gets:
                if not future.done():
                    future.set_exception(error)
            if sets:
                log.warning("verdict cache write failed: %s", e)
            return
        if sets and any(isinstance(r, Exception) for r in results[: len(sets)]):
            log.warning("verdict cache write failed: %s", next(r for r in results if isinstance(r, Exception)))
        found = results[-1] if keys else []
        if isinstance(found, Exception):
            for _, future in gets:
                if not future.done():
                    future.set_exception(Unavailable(f"redis: {found}", code="unavailable.redis"))
            return
        by_key = dict(zip(keys, found, strict=True))
        for hashes, future in gets:
            if not future.done():
                future.set_result([by_key[self.prefix + h] for h in hashes])

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _cache_later(self, key: str, value: bytes) -> None:
        """Store a fresh verdict in Redis without making the request wait: the SETs queued go out with the next
        turn's lookups (``fetch``), in the same pipeline, or on their own after SET_DELAY when no lookup comes.
        (A repeat arriving at another process in that instant is screened again there, which costs time, not
        correctness; this process's LRU has it at once.)"""
        self._pending_sets.append((key, value))
        if len(self._pending_sets) == 1:
            asyncio.get_running_loop().call_later(SET_DELAY, self._flush_cache_sets)

    def _flush_cache_sets(self) -> None:
        pending, self._pending_sets = self._pending_sets, []
        if pending:
            self._track(asyncio.create_task(self._send_sets(pending)))

    async def _send_sets(self, pending: list[tuple[str, bytes]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for k, v in pending:
                    pipe.set(k, v, ex=self.ttl)
                await pipe.execute()
        except Exception as e:  # the cache is an optimization: a lost SET means one more screening
            log.warning("verdict cache write failed: %s", e)

    async def aclose(self) -> None:
        """Send what is queued and wait for the writes in flight."""
        self._flush_gets()
        self._flush_cache_sets()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
