"""The verdict cache: a small per-process LRU in front of Redis, and answers spliced from cached JSON.

A repeated message is usually answered without any Redis round trip: each process keeps the most recent
verdicts in an LRU (same content-hash key as Redis, so tenant and versions are part of it). A freshly screened
verdict is stored in Redis without making the request wait: the SETs of one turn of the event loop go out as
one pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import msgspec
import redis.asyncio as aioredis

from smsguard.engine import Verdict, Versions

from ._schemas import ScreenVerdict

log = logging.getLogger("smsguard.api")

LOCAL_VERDICTS = 4096  # per-process LRU of recent verdicts in front of Redis

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
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for k, v in pending:
                    pipe.set(k, v, ex=self.ttl)
                await pipe.execute()
        except Exception as e:  # the cache is an optimization: a lost SET means one more screening
            log.warning("verdict cache write failed: %s", e)

    async def aclose(self) -> None:
        """Send what is queued and wait for the writes in flight."""
        self._flush_cache_sets()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
