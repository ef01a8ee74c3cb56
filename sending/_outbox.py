"""The outbox: the one hand-over between the release step and the gateway workers.

The release step (``batches``) calls :class:`Outbox` (synchronous: it runs in threads next to its SQL);
gateway workers claim and acknowledge entries through :class:`~smsguard.sending.MessageStore` (asyncio).
Both sides share the Redis layout below and nothing else; no other module writes it.

* ``ns:outbox`` — stream of messages to send (consumer group ``workers``); an entry is deleted when it
  is acknowledged, so the stream holds only what is still to do;
* ``ns:msg:{id}`` — the message's send state; it exists from the hand-over on, which makes a hand-over
  idempotent by message id (created only when absent, in the same script as the stream entry). It
  expires ``ttl`` seconds after the hand-over (refreshed to the receipt deadline when submitted);
* ``ns:epoch`` — a random token naming the current life of this Redis. A Redis that lost its data
  (``FLUSHDB``, a restart without persistence) has none: the release step then rebuilds what it keeps in
  Redis from SQL (opt-out sets, cap counters), opens a new epoch and re-drives from SQL what it had
  handed over (:meth:`Outbox.redrive`). Every hand-over names the epoch its caller read before its
  checks and is refused (:class:`EpochChanged`) when that is no longer the current one, so nothing
  decided against a Redis that has since lost its data is handed over under the new one.

Re-driven messages whose send SQL cannot rule out (handed over, no gateway id recorded) are ``held``:
a gateway worker does not send one before ``hold_until`` and first adopts a receipt the peer re-sends
for it (an orphan), exactly as for a submit in doubt; a message SQL knows was submitted (its gateway
ids came back through the events stream) is restored as ``submitted`` with its gateway-id map, so its
late receipt still finds it, and it is not sent again.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from smsguard.core import ConflictError

OUTBOX_GROUP = "workers"

# ARGV: ns, epoch, hold ms (0: queued), ttl, 3 opt-out set keys, ncaps, (cap key, max, ttl) * ncaps,
#       sender, tenant, ncontents, texts..., then per message: id, phone, phone hash, content index (1-based),
#       opted out in SQL ('1' | '0')
# -> {codes (one char per message: s a o c), first stream id, last stream id} | {'r'} (epoch changed)
_HANDOVER = """
local ns, epoch = ARGV[1], ARGV[2]
if redis.call('GET', ns .. ':epoch') ~= epoch then return {'r', '', ''} end
local hold, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local oo1, oo2, oo3 = ARGV[5], ARGV[6], ARGV[7]
local ncaps = tonumber(ARGV[8])
local caps = {}
local p = 9
for i = 1, ncaps do
  caps[i] = {ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])}
  p = p + 3
end
local sender, tenant = ARGV[p], ARGV[p + 1]
local ncontents = tonumber(ARGV[p + 2])
p = p + 3
local texts = {}
for i = 1, ncontents do texts[i] = ARGV[p + i - 1] end
p = p + ncontents
local state, hold_until = 'queued', '0'
if hold > 0 then
  local t = redis.call('TIME')
  state, hold_until = 'held', tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + hold)
end
local outbox = ns .. ':outbox'
local codes = {}
local first, last = '', ''
local touched = {}
while p <= #ARGV do
  local id, phone, h, c, sql_out = ARGV[p], ARGV[p + 1], ARGV[p + 2], tonumber(ARGV[p + 3]), ARGV[p + 4]
  p = p + 5
  local key = ns .. ':msg:' .. id
  if redis.call('EXISTS', key) == 1 then
    codes[#codes + 1] = 'a'
  elseif sql_out == '1' or redis.call('SISMEMBER', oo1, h) == 1 or redis.call('SISMEMBER', oo2, h) == 1
      or redis.call('SISMEMBER', oo3, h) == 1 then
    codes[#codes + 1] = 'o'
  else
    local full = false
    for i = 1, ncaps do
      local n = tonumber(redis.call('HGET', caps[i][1], h) or '0')
      if n >= caps[i][2] then full = true break end
    end
    if full then
      codes[#codes + 1] = 'c'
    else
      for i = 1, ncaps do
        redis.call('HINCRBY', caps[i][1], h, 1)
        touched[i] = true
      end
      redis.call('HSET', key, 'state', state, 'phone', phone, 'hold_until', hold_until)
      redis.call('EXPIRE', key, ttl)
      local eid = redis.call('XADD', outbox, '*', 'id', id, 'phone', phone, 'text', texts[c],
                             'sender', sender, 'tenant', tenant)
      if first == '' then first = eid end
      last = eid
      codes[#codes + 1] = 's'
    end
  end
end
for i = 1, ncaps do
  if touched[i] then redis.call('EXPIRE', caps[i][1], caps[i][3]) end
end
return {table.concat(codes), first, last}
"""

# ARGV: ns, epoch, hold ms, ttl, then per message: id, phone, text, sender, tenant, gateway, gateway ids (a,b)
# -> codes (one char per message: a = still there, k = restored as submitted, d = re-driven, held) | 'r'
_REDRIVE = """
local ns, epoch = ARGV[1], ARGV[2]
if redis.call('GET', ns .. ':epoch') ~= epoch then return 'r' end
local hold, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local hold_until = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + hold)
local codes = {}
local p = 5
while p <= #ARGV do
  local id, phone, text, sender, tenant, gateway, gw_ids = ARGV[p], ARGV[p + 1], ARGV[p + 2], ARGV[p + 3],
    ARGV[p + 4], ARGV[p + 5], ARGV[p + 6]
  p = p + 7
  local key = ns .. ':msg:' .. id
  if redis.call('EXISTS', key) == 1 then
    codes[#codes + 1] = 'a'
  elseif gw_ids ~= '' then
    local parts = 0
    for gw_id in string.gmatch(gw_ids, '[^,]+') do
      parts = parts + 1
      redis.call('SET', ns .. ':gwid:' .. gateway .. ':' .. gw_id, id, 'EX', ttl)
    end
    redis.call('HSET', key, 'state', 'submitted', 'gateway', gateway, 'parts', parts, 'gw_ids', gw_ids,
               'phone', phone, 'redriven', 1)
    redis.call('EXPIRE', key, ttl)
    -- its receipt is awaited again: lost with Redis, it still ends 'unknown' at the channel's deadline
    redis.call('ZADD', ns .. ':outstanding:' .. gateway, tonumber(t[1]), id)
    codes[#codes + 1] = 'k'
  else
    redis.call('HSET', key, 'state', 'held', 'phone', phone, 'hold_until', hold_until, 'redriven', 1)
    redis.call('EXPIRE', key, ttl)
    redis.call('XADD', ns .. ':outbox', '*', 'id', id, 'phone', phone, 'text', text, 'sender', sender,
               'tenant', tenant)
    codes[#codes + 1] = 'd'
  end
end
return table.concat(codes)
"""


class EpochChanged(ConflictError):
    """Redis lost its data (or another worker already opened a new epoch) since the caller read the epoch."""

    code = "outbox.epoch_changed"


@dataclasses.dataclass(frozen=True, slots=True)
class Handover:
    """One recipient's message as the release step hands it over. ``phone`` is the sealed number the gateway
    worker opens (``sending/_sealing.py``: never a plain number in Redis); ``phone_hash`` is the keyed
    hash the opt-out sets and cap counters are keyed by."""

    id: str
    phone: str
    phone_hash: str
    content: int
    """Index into the texts of the call (0-based)."""
    opted_out: bool = False
    """SQL says this number opted out: never handed over, whatever Redis holds."""


@dataclasses.dataclass(frozen=True, slots=True)
class Cap:
    key: str
    max: int
    ttl: int


@dataclasses.dataclass(frozen=True, slots=True)
class HandoverResult:
    codes: str
    """One per message, in order: ``s`` handed over, ``a`` already handed over, ``o`` opted out, ``c`` capped."""
    first_entry: str
    last_entry: str


@dataclasses.dataclass(frozen=True, slots=True)
class Redrive:
    """One message SQL says was handed over and is not final. ``gateway_ids`` non-empty: SQL knows the
    gateway took it (restored, not sent again)."""

    id: str
    phone: str
    text: str
    sender: str = ""
    tenant: str = ""
    gateway: str = ""
    gateway_ids: tuple[str, ...] = ()


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else v


class Outbox:
    """The release step's side of the outbox, over a synchronous ``redis.Redis``.

    ``ttl``: seconds a message's state is kept after the hand-over (the receipt deadline of the slowest
    channel plus the time it may wait in the outbox); ``hold``: seconds a re-driven message whose send
    cannot be ruled out waits for a re-sent receipt before it is sent."""

    def __init__(self, redis: Any, namespace: str, *, ttl: int = 7 * 86400, hold: float = 10.0) -> None:
        self.redis = redis
        self.ns = namespace
        self.ttl = ttl
        self.hold = hold
        self.stream = f"{namespace}:outbox"
        self.epoch_key = f"{namespace}:epoch"
        self._handover = redis.register_script(_HANDOVER)
        self._redrive = redis.register_script(_REDRIVE)

    # -- epochs --------------------------------------------------------------------------------------------
    def epoch(self) -> str | None:
        """The current epoch, or None when Redis lost its data since the last :meth:`open_epoch`."""
        got = self.redis.get(self.epoch_key)
        return None if got is None else _text(got)

    def open_epoch(self) -> str:
        """Start a new epoch (call after rebuilding from SQL what Redis lost); the one that exists wins."""
        token = os.urandom(8).hex()
        self.redis.set(self.epoch_key, token, nx=True)
        return self.epoch() or token

    # -- hand-over -----------------------------------------------------------------------------------------
    def hand_over(
        self,
        messages: Sequence[Handover],
        texts: Sequence[str],
        *,
        epoch: str,
        sender: str = "",
        tenant: str = "",
        optout_sets: tuple[str, str, str] = ("", "", ""),
        caps: Sequence[Cap] = (),
        held: bool = False,
    ) -> HandoverResult:
        """Hand ``messages`` over atomically, each at most once (by id): skipped when already handed over,
        opted out (in SQL or in any of ``optout_sets``) or over a cap (each counted in every cap when
        handed over). ``held``: they may have been handed over before Redis lost its data, so a gateway
        first waits ``hold`` seconds for a receipt the peer may re-send. Raises :class:`EpochChanged`."""
        used = sorted({m.content for m in messages})
        index = {c: n for n, c in enumerate(used, start=1)}
        args: list[Any] = [self.ns, epoch, int(self.hold * 1000) if held else 0, self.ttl, *optout_sets, len(caps)]
        for c in caps:
            args += [c.key, c.max, c.ttl]
        args += [sender, tenant, len(used), *(texts[c] for c in used)]
        for m in messages:
            args += [m.id, m.phone, m.phone_hash, index[m.content], "1" if m.opted_out else "0"]
        codes, first, last = self._handover(args=args)
        codes = _text(codes)
        if codes == "r":
            raise EpochChanged(epoch)
        return HandoverResult(codes, _text(first), _text(last))

    def redrive(self, messages: Sequence[Redrive], *, epoch: str) -> str:
        """Put back what Redis lost of ``messages`` (SQL: handed over, not final). Returns one code per
        message: ``a`` still there, ``k`` restored as submitted, ``d`` re-driven (held). Raises
        :class:`EpochChanged`."""
        if not messages:
            return ""
        args: list[Any] = [self.ns, epoch, int(self.hold * 1000), self.ttl]
        for m in messages:
            args += [m.id, m.phone, m.text, m.sender, m.tenant, m.gateway, ",".join(m.gateway_ids)]
        codes = _text(self._redrive(args=args))
        if codes == "r":
            raise EpochChanged(epoch)
        return codes

    def exists(self, message_id: str) -> bool:
        return bool(self.redis.exists(f"{self.ns}:msg:{message_id}"))
