"""Dispatching review items through a Redis Stream consumer group, with leases.

SQL (``review_items``) is the truth; Redis holds only who is looking at what. Every open item has one entry
in the stream ``<ns>:review:stream``, and every entry sits in the consumer group's pending list (PEL):

* **Dispatch** (``dispatch``): ``XADD`` the item, then ``XREADGROUP`` delivers it to the pseudo consumer
  ``~pool`` and ``XCLAIM … IDLE`` backdates it, so a free item is simply a pending entry that has been idle
  for longer than any lease.
* **Claim** (``claim`` / ``claim_next``): ``XCLAIM <reviewer> <lease ms>`` succeeds only when the entry has
  been idle at least one lease: it is free (in the pool) or its reviewer's lease ran out. Claiming resets the
  idle time, which is what makes the item invisible to everybody else for one lease. The check and the claim
  run in one Lua script, so two reviewers can never both get it.
* **Extend** (``extend``): the owner re-claims its own entry (idle back to 0).
* **Release** (``release``): back to ``~pool``, backdated, so the next reviewer gets it at once.
* **Finish** (``finish``): ``XACK`` + ``XDEL``: an acknowledged entry is trimmed from the stream.
* **Reap** (``reap``): ``XAUTOCLAIM`` returns expired leases to the pool (so counts and "claimed by" stay
  right even when nobody claims) and trims entries of items that were decided.

Redis losing its data is detected through the *epoch*: a random token stored next to the stream when the
consumer group is created. Each item row records the epoch it was dispatched under; when the token is gone
(a flush, a new empty Redis) a new one is made and every open item is dispatched again from SQL. An entry
missing from a snapshot-restored Redis is noticed when a claim finds no pending entry for it, and the item is
dispatched again. Decisions never rely on Redis alone: the item's ``version`` in SQL is checked and bumped in
the deciding transaction, so a lost lease can at worst let two reviewers look at one item, never decide it
twice.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import Engine, bindparam, or_, select, update

from ._config import ReviewConfig
from ._tables import FINAL_STATUSES, OPEN_STATUSES, review_items

POOL = "~pool"
GROUP = "reviewers"
# Far beyond any lease: a backdated entry is claimable by anyone at once.
FREE_IDLE_MS = 10**12

# KEYS: stream, epoch key. ARGV: group, pool consumer, backdate ms, item ids...
_DISPATCH = """
local ids = {}
for i = 4, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'item', ARGV[i])
end
if #ids > 0 then
  redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', #ids + 1000, 'STREAMS', KEYS[1], '>')
  -- unpack() only expands as the last argument: build the whole argument list
  local args = {KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(ids) do args[#args + 1] = id end
  args[#args + 1] = 'IDLE'; args[#args + 1] = ARGV[3]; args[#args + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(args))
end
return ids
"""

# KEYS: stream, epoch key. ARGV: group, me, lease ms, epoch, stream ids (in preference order)...
# Returns {status, value}: {"epoch", current} when Redis lost its data; {"ok", sid} for the claimed entry;
# {"none", missing ids joined by ","} when none could be claimed (missing = not pending: dispatch again).
_CLAIM = """
local epoch = redis.call('GET', KEYS[2])
if epoch ~= ARGV[4] then return {'epoch', epoch or ''} end
local missing = {}
for i = 5, #ARGV do
  local sid = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], sid, sid, 1)
  if #p == 0 then
    missing[#missing + 1] = sid
  elseif p[1][2] == ARGV[2] or p[1][3] >= tonumber(ARGV[3]) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, sid, 'JUSTID')
    return {'ok', sid}
  end
end
return {'none', table.concat(missing, ',')}
"""

# KEYS: stream. ARGV: group, me, stream id, target consumer, idle ms. Move an entry I own to target.
_HANDOVER = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 then return 'missing' end
if p[1][2] ~= ARGV[2] then return p[1][2] end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[4], 0, ARGV[3], 'IDLE', ARGV[5], 'JUSTID')
return 'ok'
"""

# KEYS: stream. ARGV: group, stream ids... -> flat list of owner, idle ms ('' and -1 when not pending).
_LEASES = """
local out = {}
for i = 2, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 0 then out[#out + 1] = ''; out[#out + 1] = -1
  else out[#out + 1] = p[1][2]; out[#out + 1] = p[1][3] end
end
return out
"""

# KEYS: stream. ARGV: group, pool, lease ms, cursor, count, backdate ms. Expired leases back to the pool.
_REAP = """
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5], 'JUSTID')
local ids = r[2]
if #ids > 0 then
  local args = {KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(ids) do args[#args + 1] = id end
  args[#args + 1] = 'IDLE'; args[#args + 1] = ARGV[6]; args[#args + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(args))
end
return r
"""


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds an item's entry right now: ``owner`` None = free (in the pool, or the lease expired)."""

    owner: str | None
    expires_in: float
    missing: bool = False


class Queue:
    """The Redis side of the review queue for one namespace. Synchronous (redis-py + SQLAlchemy): the web
    handlers call it from the thread pool, the tests and commands directly."""

    def __init__(self, db: Engine, r: redis.Redis, *, namespace: str, config: ReviewConfig) -> None:
        self.db = db
        self.r = r
        self.config = config
        self.stream = f"{namespace}:review:stream"
        self.epoch_key = f"{namespace}:review:epoch"
        self.lock_key = f"{namespace}:review:dispatch-lock"
        self._epoch: str | None = None
        self._dispatch = r.register_script(_DISPATCH)
        self._claim = r.register_script(_CLAIM)
        self._handover = r.register_script(_HANDOVER)
        self._leases = r.register_script(_LEASES)
        self._reap = r.register_script(_REAP)

    @property
    def lease_ms(self) -> int:
        return int(self.config.lease_seconds * 1000)

    # -- epoch and dispatch ---------------------------------------------------------------------------
    def epoch(self) -> tuple[str, bool]:
        """The current epoch, creating stream, group and epoch when Redis has none; and whether it changed
        since this process last looked (then every open item must be dispatched again)."""
        current = self.r.get(self.epoch_key)
        if current is None:
            try:
                self.r.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise
            self.r.set(self.epoch_key, secrets.token_hex(8), nx=True)  # one process wins; all use its token
            current = self.r.get(self.epoch_key)
        epoch = current.decode() if isinstance(current, bytes) else str(current)
        changed = epoch != self._epoch
        self._epoch = epoch
        return epoch, changed

    def dispatch(self, *, full: bool = False, limit: int = 500, wait: float = 0.0) -> int:
        """Add open items that are not in the stream of the current epoch; returns how many were added.
        ``full`` (or a changed epoch) re-drives every open item not dispatched under this epoch. ``wait`` is how
        long to wait for another process's dispatch to finish (it may be adding the very item a claim wants)."""
        epoch, changed = self.epoch()
        # One dispatcher at a time across processes: two would add the same item twice.
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait
        while not self.r.set(self.lock_key, token, nx=True, px=30_000):
            if time.monotonic() >= deadline:
                return 0
            time.sleep(0.02)
        added = 0
        try:
            stale = or_(review_items.c.dispatch_epoch.is_(None), review_items.c.dispatch_epoch != epoch)
            todo = stale if (full or changed) else review_items.c.dispatch_epoch.is_(None)
            while True:
                with self.db.connect() as conn:
                    ids = list(
                        conn.execute(
                            select(review_items.c.id)
                            .where(review_items.c.status.in_(OPEN_STATUSES), todo)
                            .order_by(review_items.c.id)
                            .limit(limit)
                        ).scalars()
                    )
                if not ids:
                    break
                sids = self._dispatch(keys=[self.stream, self.epoch_key],
                                      args=[GROUP, POOL, FREE_IDLE_MS, *[str(i) for i in ids]])
                with self.db.begin() as conn:
                    conn.execute(
                        update(review_items)
                        .where(review_items.c.id == bindparam("b_id"))
                        .values(stream_id=bindparam("b_sid"), dispatch_epoch=epoch),
                        [{"b_id": i, "b_sid": _s(sid)} for i, sid in zip(ids, sids, strict=True)],
                    )
                added += len(ids)
                if len(ids) < limit:
                    break
        finally:
            if self.r.get(self.lock_key) == token.encode():
                self.r.delete(self.lock_key)
        return added

    def forget(self, item_ids: Iterable[int]) -> None:
        """Mark items as not dispatched (their entries are gone from Redis): the next dispatch adds them."""
        ids = list(item_ids)
        if ids:
            with self.db.begin() as conn:
                conn.execute(update(review_items).where(review_items.c.id.in_(ids)).values(dispatch_epoch=None))

    # -- leases ---------------------------------------------------------------------------------------
    def claim(self, consumer: str, candidates: Sequence[tuple[int, str | None, str | None]]) -> int | None:
        """Claim the first free candidate ``(item id, stream id, epoch)`` for ``consumer``; return its item id
        or None. Candidates not dispatched under the current epoch are dispatched first (so nothing waits for
        the background loop, and a flushed Redis is re-driven right here)."""
        for _attempt in range(3):
            epoch, changed = self.epoch()
            if changed or any(sid is None or e != epoch for _, sid, e in candidates):
                self.dispatch(full=changed, wait=2.0)
                candidates = self._refresh(candidates)
            by_sid = {sid: item for item, sid, _ in candidates if sid}
            if not by_sid:
                return None
            status, value = self._claim(
                keys=[self.stream, self.epoch_key], args=[GROUP, consumer, self.lease_ms, epoch, *by_sid]
            )
            status, value = _s(status), _s(value)
            if status == "ok":
                return by_sid[value]
            if status == "epoch":
                self._epoch = None
                continue
            missing = [by_sid[s] for s in value.split(",") if s]
            if not missing:
                return None
            self.forget(missing)  # their entries vanished (e.g. Redis restored from an older snapshot)
            candidates = self._refresh(candidates)
        return None

    def _refresh(self, candidates: Sequence[tuple[int, str | None, str | None]]) -> list[tuple[int, Any, Any]]:
        ids = [c[0] for c in candidates]
        with self.db.connect() as conn:
            rows = {
                r.id: (r.id, r.stream_id, r.dispatch_epoch)
                for r in conn.execute(
                    select(review_items.c.id, review_items.c.stream_id, review_items.c.dispatch_epoch).where(
                        review_items.c.id.in_(ids), review_items.c.status.in_(OPEN_STATUSES)
                    )
                )
            }
        return [rows[i] for i in ids if i in rows]

    def extend(self, consumer: str, stream_id: str) -> bool:
        """Renew ``consumer``'s lease for another full lease time; False when it no longer holds it."""
        return _s(self._handover(keys=[self.stream], args=[GROUP, consumer, stream_id, consumer, 0])) == "ok"

    def release(self, consumer: str, stream_id: str) -> bool:
        """Give an item back to the pool (escalated, first of two approvals, or skipped)."""
        return _s(self._handover(keys=[self.stream], args=[GROUP, consumer, stream_id, POOL, FREE_IDLE_MS])) == "ok"

    def force_release(self, stream_id: str) -> bool:
        """Give an entry back to the pool whoever holds it (a senior freeing an item left claimed)."""
        [lease] = self.leases([stream_id])
        return lease.owner is not None and self.release(lease.owner, stream_id)

    def release_all(self, consumer: str) -> int:
        """Release every entry ``consumer`` holds; returns how many were given back."""
        try:
            held = self.r.xpending_range(self.stream, GROUP, min="-", max="+", count=1000, consumername=consumer)
        except redis.ResponseError:  # no group: Redis lost its data, so nothing is held
            return 0
        return sum(self.release(consumer, _s(p["message_id"])) for p in held)

    def finish(self, stream_id: str | None) -> None:
        """The item is decided: acknowledge its entry and trim it from the stream."""
        if stream_id:
            pipe = self.r.pipeline(transaction=True)
            pipe.xack(self.stream, GROUP, stream_id)
            pipe.xdel(self.stream, stream_id)
            pipe.execute()

    def leases(self, stream_ids: Sequence[str | None]) -> list[Lease]:
        """The lease of each entry (owner None when free or expired)."""
        wanted = [s for s in stream_ids if s]
        found: dict[str, Lease] = {}
        if wanted:
            flat = self._leases(keys=[self.stream], args=[GROUP, *wanted])
            lease = self.config.lease_seconds
            for sid, owner, idle in zip(wanted, flat[0::2], flat[1::2], strict=True):
                owner, idle = _s(owner), int(idle)
                if idle < 0:
                    found[sid] = Lease(None, 0.0, missing=True)
                elif owner == POOL or idle >= self.lease_ms:
                    found[sid] = Lease(None, 0.0)
                else:
                    found[sid] = Lease(owner, max(0.0, lease - idle / 1000))
        return [found.get(s, Lease(None, 0.0, missing=True)) if s else Lease(None, 0.0, missing=True)
                for s in stream_ids]

    def reap(self, *, count: int = 1000) -> int:
        """Return expired leases to the pool and trim entries of decided items; returns entries looked at."""
        cursor, seen = "0-0", 0
        while True:
            next_cursor, ids, *_ = self._reap(
                keys=[self.stream], args=[GROUP, POOL, self.lease_ms, cursor, count, FREE_IDLE_MS]
            )
            ids = [_s(i) for i in ids]
            seen += len(ids)
            if ids:
                with self.db.connect() as conn:
                    done = list(
                        conn.execute(
                            select(review_items.c.stream_id).where(
                                review_items.c.stream_id.in_(ids), review_items.c.status.in_(FINAL_STATUSES),
                                review_items.c.release_at.is_(None),  # pending release: kept until released
                            )
                        ).scalars()
                    )
                for sid in done:
                    self.finish(sid)
            cursor = _s(next_cursor)
            if cursor == "0-0":
                return seen

    def stats(self) -> dict[str, int]:
        """Stream length and pending entries (for the queue page and tests)."""
        try:
            pending = self.r.xpending(self.stream, GROUP)
        except redis.ResponseError:
            return {"length": 0, "pending": 0}
        return {"length": int(self.r.xlen(self.stream)), "pending": int(pending["pending"])}

    def run_once(self) -> None:
        """One turn of the background loop: dispatch what is new (everything after a Redis loss)."""
        self.dispatch()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


def consumer_name(user_id: int) -> str:
    return f"u{user_id}"


