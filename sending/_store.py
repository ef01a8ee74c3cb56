"""The durable side of sending, in Redis (no SQL): the outbox queue, each message's send state, the
gateway-id → our-id map, receipts that arrived before their id was known, and the events stream that
hands :class:`DeliveryReport` / :class:`InboundMessage` to the recipients/opt-out storage (issue 7).

Keys (``ns`` is the namespace):

* ``ns:outbox`` — stream of messages to send, consumer group ``workers`` (un-acked entries survive a crash;
  an acknowledged one is deleted); written only through ``sending/_outbox.py``;
* ``ns:msg:{id}`` — hash: state (queued, held, sending, submitted, delivered, failed, expired, rejected,
  unknown), gateway, the sealed phone (``sending/_sealing.py``), parts, gateway ids, per-part outcomes,
  carrier code; it expires ``id_ttl``
  seconds (the receipt deadline) after the submit;
* ``ns:gwid:{gateway}:{gateway id}`` — our id (expires after ``id_ttl``);
* ``ns:orphan:{gateway}:{gateway id}`` and ``ns:orphans:{gateway}:{phone tag}`` — a receipt whose gateway id is
  not mapped (yet): the submit response was lost in a crash, or is still being recorded;
* ``ns:outstanding:{gateway}`` — sorted set of submitted messages awaiting their receipt, by submit time
  (written by the gateway role, ``sending/_gateway_role.py``; a final outcome removes its member);
* ``ns:events`` — stream of outcomes (``type`` sent | report | inbound), consumed by :class:`EventRelay`,
  which deletes each event once its sink made it durable.

Every state change is one Lua script, so a receipt racing its own submit response, a crash between
two writes, or two workers never leave a half-applied state; a final outcome and its event are
written together.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from smsguard.sending._gateway import (
    DeliveryReport,
    EventSink,
    InboundMessage,
    OutboundMessage,
    Receipt,
    SentReport,
    SubmitResult,
)
from smsguard.sending._outbox import OUTBOX_GROUP
from smsguard.sending._pipelining import BatchScript, Pipeliner
from smsguard.sending._sealing import PLAIN, PhoneSeal

log = logging.getLogger(__name__)
T = TypeVar("T")

FINAL = ("submitted", "delivered", "failed", "expired", "rejected", "unknown")

# Shared Lua: apply one part's receipt to our message; emits the event when the last part is in.
_APPLY = """
local function apply(ns, our, gateway, gw_id, status, carrier)
  local key = ns .. ':msg:' .. our
  if redis.call('HSETNX', key, 'p:' .. gw_id, status) == 0 then return 'dup' end
  -- receipt policy last_part (sending/_channels.py): only the last part's receipt decides
  local last = redis.call('HGET', key, 'receipt_last')
  if last and last ~= gw_id then return 'partial' end
  if status ~= 'delivered' and redis.call('HEXISTS', key, 'bad') == 0 then
    redis.call('HSET', key, 'bad', status, 'carrier_code', carrier)
  end
  local done = redis.call('HINCRBY', key, 'done', 1)
  local parts = tonumber(redis.call('HGET', key, 'parts') or '1')
  if done < parts and not last then return 'partial' end
  redis.call('ZREM', ns .. ':outstanding:' .. gateway, our)
  local final = redis.call('HGET', key, 'bad') or 'delivered'
  local code = redis.call('HGET', key, 'carrier_code') or carrier
  redis.call('HSET', key, 'state', final, 'carrier_code', code)
  redis.call('XADD', ns .. ':events', '*', 'type', 'report', 'message_id', our,
    'phone', redis.call('HGET', key, 'phone') or '', 'status', final, 'carrier_code', code,
    'gateway', gateway, 'gateway_ids', redis.call('HGET', key, 'gw_ids') or '')
  return final
end
"""

# One item of a BatchScript (sending/_pipelining.py): msg key, gateway, sealed phone, ttl.
# -> 'go' | 'redriven' (go, but re-driven after a Redis loss: maybe sent before) | 'done' | 'in_doubt:<gateway>'
#    | 'hold:<ms left>'
_BEGIN = """
local function one(key, gateway, phone, ttl)
  local state = redis.call('HGET', key, 'state')
  if state == 'sending' then return 'in_doubt:' .. (redis.call('HGET', key, 'gateway') or '') end
  if state == 'held' then
    local t = redis.call('TIME')
    local left = tonumber(redis.call('HGET', key, 'hold_until') or '0') - (tonumber(t[1]) * 1000
      + math.floor(tonumber(t[2]) / 1000))
    if left > 0 then return 'hold:' .. left end
  elseif state and state ~= 'queued' then return 'done' end
  redis.call('HSET', key, 'state', 'sending', 'gateway', gateway, 'phone', phone)
  redis.call('HINCRBY', key, 'attempts', 1)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ttl) end
  if redis.call('HEXISTS', key, 'redriven') == 1 then return 'redriven' end
  return 'go'
end
"""

# One BatchScript item: ns, our id, gateway, ttl, sent event ('1' | '0'), outstanding set ('' = none), its score,
# receipt_last ('' = none), gateway ids...
_RECORD = _APPLY + """
local function one(ns, our, gateway, ttl, sent, outstanding, score, last, ...)
  local key = ns .. ':msg:' .. our
  local ids = {...}
  -- tracked first (the channel's receipt deadline, sending/_gateway_role.py): a final outcome below removes it
  if outstanding ~= '' then redis.call('ZADD', outstanding, score, our) end
  if last ~= '' then redis.call('HSET', key, 'receipt_last', last) end
  redis.call('HSET', key, 'state', 'submitted', 'gateway', gateway, 'parts', #ids, 'gw_ids', table.concat(ids, ','))
  redis.call('EXPIRE', key, ttl)
  -- SQL learns that the gateway took it: a Redis that loses this record is re-driven without a second send
  -- (unless the worker writes it to SQL itself, sending/_journal.py)
  if sent == '1' then
    redis.call('XADD', ns .. ':events', '*', 'type', 'sent', 'message_id', our, 'gateway', gateway,
      'gateway_ids', table.concat(ids, ','))
  end
  local result = 'submitted'
  for _, gw_id in ipairs(ids) do
    redis.call('SET', ns .. ':gwid:' .. gateway .. ':' .. gw_id, our, 'EX', ttl)
  end
  for _, gw_id in ipairs(ids) do
    local okey = ns .. ':orphan:' .. gateway .. ':' .. gw_id
    local o = redis.call('HMGET', okey, 'status', 'carrier', 'phone')
    if o[1] then
      redis.call('DEL', okey)
      redis.call('SREM', ns .. ':orphans:' .. gateway .. ':' .. (o[3] or ''), gw_id)
      result = apply(ns, our, gateway, gw_id, o[1], o[2])
    end
  end
  return result
end
"""

# One BatchScript item: ns, gateway, gateway id, status, carrier code, phone tag (a keyed hash), ttl
_RECEIPT = _APPLY + """
local function one(ns, gateway, gw_id, status, carrier, phone, ttl)
  local our = redis.call('GET', ns .. ':gwid:' .. gateway .. ':' .. gw_id)
  if not our then
    local okey = ns .. ':orphan:' .. gateway .. ':' .. gw_id
    redis.call('HSET', okey, 'status', status, 'carrier', carrier, 'phone', phone)
    redis.call('EXPIRE', okey, ttl)
    local skey = ns .. ':orphans:' .. gateway .. ':' .. phone
    redis.call('SADD', skey, gw_id)
    redis.call('EXPIRE', skey, ttl)
    return 'orphan'
  end
  return apply(ns, our, gateway, gw_id, status, carrier)
end
"""

# An in-doubt message (sent, response lost): adopt an orphan receipt for the same gateway and phone.
# ARGV: ns, our id, gateway, phone tag, ttl -> final state or 'none'
_RESOLVE = _APPLY + """
local ns, our, gateway, phone, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local skey = ns .. ':orphans:' .. gateway .. ':' .. phone
for _, gw_id in ipairs(redis.call('SMEMBERS', skey)) do
  local okey = ns .. ':orphan:' .. gateway .. ':' .. gw_id
  local o = redis.call('HMGET', okey, 'status', 'carrier')
  redis.call('SREM', skey, gw_id)
  if o[1] then
    redis.call('DEL', okey)
    local key = ns .. ':msg:' .. our
    redis.call('HSET', key, 'state', 'submitted', 'gateway', gateway, 'parts', 1, 'gw_ids', gw_id, 'resolved', 1)
    redis.call('HDEL', key, 'receipt_last')
    redis.call('SET', ns .. ':gwid:' .. gateway .. ':' .. gw_id, our, 'EX', ttl)
    return apply(ns, our, gateway, gw_id, o[1], o[2])
  end
end
return 'none'
"""

# KEYS[1] msg key. ARGV: ns, our id, state, status for the event, carrier code, gateway
_FINISH = """
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'carrier_code', ARGV[5], 'gateway', ARGV[6])
redis.call('ZREM', ARGV[1] .. ':outstanding:' .. ARGV[6], ARGV[2])
redis.call('XADD', ARGV[1] .. ':events', '*', 'type', 'report', 'message_id', ARGV[2],
  'phone', redis.call('HGET', KEYS[1], 'phone') or '', 'status', ARGV[4], 'carrier_code', ARGV[5],
  'gateway', ARGV[6], 'gateway_ids', '')
return 1
"""


def redis_client(url: str, *, max_connections: int = 64) -> Any:
    """An asyncio Redis client whose pool waits for a free connection instead of failing (the worker
    runs many submits and receipts at once)."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=None)
    return aioredis.Redis(connection_pool=pool)


async def _until_redis_answers(call: Callable[[], Awaitable[T]], give_up_after: float) -> T:
    """``call()`` again while Redis is unreachable (a restart): a fact the peer already acted on — it took a
    submit, we are about to acknowledge its receipt — must reach Redis, or the peer is not answered."""
    deadline = time.monotonic() + give_up_after
    delay = 0.05
    while True:
        try:
            return await call()
        except (RedisConnectionError, RedisTimeoutError):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


class MessageStore:
    def __init__(
        self, redis: Any, namespace: str = "smsguard:send", *, id_ttl: int = 7 * 86400, outage: float = 60.0,
        seal: PhoneSeal = PLAIN, sent_events: bool = True,
    ) -> None:
        self.redis = redis
        self.seal = seal  # how numbers are written to Redis (sending/_sealing.py)
        # False when the worker journals its submits to SQL itself (sending/_journal.py): no relay copy needed
        self.sent_events = sent_events
        self.ns = namespace
        self.id_ttl = id_ttl
        self.outage = outage  # seconds a write the peer depends on is retried while Redis is unreachable
        self.outbox = f"{namespace}:outbox"
        self.events = f"{namespace}:events"
        # the per-message scripts: every call of one loop turn in one EVALSHA (sending/_pipelining.py)
        self._begin = BatchScript(redis, _BEGIN)
        self._record = BatchScript(redis, _RECORD)
        self._receipt = BatchScript(redis, _RECEIPT)
        self._resolve = redis.register_script(_RESOLVE)
        self._finish = redis.register_script(_FINISH)
        self.pipeliner = Pipeliner(redis)  # concurrent sends share round trips (sending/_pipelining.py)

    def msg_key(self, message_id: str) -> str:
        return f"{self.ns}:msg:{message_id}"

    # -- outbox ---------------------------------------------------------------------------------------

    async def ensure_groups(self) -> None:
        for stream, group in ((self.outbox, OUTBOX_GROUP), (self.events, "sink")):
            with contextlib.suppress(ResponseError):  # BUSYGROUP: already there
                await self.redis.xgroup_create(stream, group, id="0", mkstream=True)

    async def enqueue(self, messages: list[OutboundMessage]) -> None:
        """Queue messages for sending without the release step's checks (tests, benchmarks, demos)."""
        pipe = self.redis.pipeline(transaction=False)
        for m in messages:
            pipe.hsetnx(self.msg_key(m.id), "state", "queued")
            sealed = self.seal.seal(m.phone)
            pipe.hset(self.msg_key(m.id), "phone", sealed)
            pipe.expire(self.msg_key(m.id), self.id_ttl)
            pipe.xadd(self.outbox, m.to_fields() | {"phone": sealed})
        await pipe.execute()

    def message(self, fields: dict[str, str]) -> OutboundMessage:
        """The outbox entry ``fields`` as the adapters take it: with the plain number (raises ``SealError``)."""
        message = OutboundMessage.from_fields(fields)
        return dataclasses.replace(message, phone=self.seal.open(message.phone))

    async def _read(self, consumer: str, last_id: str, count: int, block_ms: int | None) -> list:
        """XREADGROUP that survives a Redis which lost the group (FLUSHDB, a restart): recreate it, read again."""
        for attempt in (1, 2):
            try:
                got = await self.redis.xreadgroup(
                    OUTBOX_GROUP, consumer, {self.outbox: last_id}, count=count, block=block_ms
                )
                return got[0][1] if got else []
            except ResponseError as e:
                if "NOGROUP" not in str(e) or attempt == 2:
                    raise
                log.warning("outbox group %s is gone (Redis lost its data?): recreating it", OUTBOX_GROUP)
                await self.ensure_groups()
        return []

    async def recover(self, consumer: str, count: int = 1000) -> list:
        """This consumer's entries read but never acknowledged (it crashed): taken again after a restart."""
        return [e for e in await self._read(consumer, "0", count, None) if e[1]]

    async def claim(self, consumer: str, count: int, *, block_ms: int = 200, min_idle_ms: int | None = None) -> list:
        """New entries; with ``min_idle_ms``, first those another (dead) worker left that long."""
        if min_idle_ms is not None:
            with contextlib.suppress(ResponseError):
                _, stolen, *_ = await self.redis.xautoclaim(
                    self.outbox, OUTBOX_GROUP, consumer, min_idle_ms, "0-0", count=count
                )
                if stolen:
                    return [e for e in stolen if e[1]]
        return await self._read(consumer, ">", count, block_ms)

    async def ack(self, entry_ids: list[Any]) -> None:
        """Done with these entries: acknowledged and deleted (the stream keeps only what is left to do)."""
        if entry_ids:  # the entries acked in one loop turn go as one XACK and one XDEL
            n = len(entry_ids)
            await asyncio.gather(self.pipeliner.merged("XACK", self.outbox, OUTBOX_GROUP, *entry_ids, members=n),
                                 self.pipeliner.merged("XDEL", self.outbox, *entry_ids, members=n))

    async def backlog(self) -> int:
        """Messages queued or claimed but not yet acknowledged."""
        try:
            groups = await self.redis.xinfo_groups(self.outbox)
        except ResponseError:  # no stream: nothing queued
            return 0
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == OUTBOX_GROUP:
                return int(g.get("lag") or 0) + int(g["pending"])
        return 0

    # -- send state -----------------------------------------------------------------------------------

    async def begin(self, message: OutboundMessage, gateway: str) -> str:
        sealed = self.seal.seal(message.phone)
        res = await self.pipeliner.batch(self._begin, [self.msg_key(message.id), gateway, sealed, self.id_ttl])
        return res.decode() if isinstance(res, bytes) else res

    def _tracking(self, result: SubmitResult) -> tuple[str, float, str]:
        """(outstanding set, score, receipt_last) the record also writes; none here (``ChannelStore`` has them)."""
        return "", 0.0, ""

    async def record_submitted(self, result: SubmitResult) -> str:
        args = [self.ns, result.message_id, result.gateway, self.id_ttl, "1" if self.sent_events else "0",
                *self._tracking(result), *result.gateway_ids]
        res = await _until_redis_answers(lambda: self.pipeliner.batch(self._record, args), self.outage)
        return res.decode() if isinstance(res, bytes) else res

    async def release(self, message: OutboundMessage) -> None:
        """Back to queued: nothing is in flight (before a backoff or a failover)."""
        await self.pipeliner.command("HSET", self.msg_key(message.id), "state", "queued")

    async def reject(self, message: OutboundMessage, gateway: str, carrier_code: str) -> None:
        """A permanent refusal: the recipient's outcome is failed, with the carrier's code."""
        await self.pipeliner.script(
            self._finish, [self.msg_key(message.id)], [self.ns, message.id, "rejected", "failed", carrier_code, gateway]
        )

    async def mark_unknown(self, message: OutboundMessage, gateway: str) -> None:
        await self._finish(
            keys=[self.msg_key(message.id)], args=[self.ns, message.id, "unknown", "unknown", "in_doubt", gateway]
        )

    async def resolve_in_doubt(self, message: OutboundMessage, gateway: str) -> str:
        res = await self._resolve(args=[self.ns, message.id, gateway, self.seal.tag(message.phone), self.id_ttl])
        return res.decode() if isinstance(res, bytes) else res

    async def state(self, message_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.msg_key(message_id))
        return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in raw.items()}

    # -- receipts and MO (GatewayEvents) --------------------------------------------------------------

    async def on_receipt(self, receipt: Receipt) -> None:
        if receipt.status == "unknown":  # ACCEPTD / ENROUTE: not an outcome yet
            return
        args = [self.ns, receipt.gateway, receipt.gateway_id, receipt.status, receipt.carrier_code,
                self.seal.tag(receipt.phone), self.id_ttl]
        await _until_redis_answers(lambda: self.pipeliner.batch(self._receipt, args), self.outage)

    async def on_inbound(self, message: InboundMessage) -> None:
        fields = {"type": "inbound", "phone": self.seal.seal(message.phone), "text": message.text,
                  "gateway": message.gateway, "to": message.to, "opt_out": "1" if message.opt_out else "0"}
        await _until_redis_answers(lambda: self.redis.xadd(self.events, fields), self.outage)


def _decode(fields: dict[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()}


def event_from_fields(fields: dict[Any, Any], seal: PhoneSeal = PLAIN, *,
                      report_phones: bool = True) -> DeliveryReport | InboundMessage | SentReport:
    """The event of one stream entry; with ``report_phones=False`` a delivery report's phone is left empty
    instead of opened (a sink that never reads it is spared a decryption per report)."""
    f = _decode(fields)
    if "phone" in f:
        if not report_phones and f["type"] == "report":
            f["phone"] = ""
        else:
            f["phone"] = seal.open(f["phone"]) if f["phone"] else ""
    if f["type"] == "sent":
        return SentReport(f["message_id"], f["gateway"], tuple(x for x in f.get("gateway_ids", "").split(",") if x))
    if f["type"] == "inbound":
        return InboundMessage(f["phone"], f["text"], f["gateway"], f.get("to", ""), f.get("opt_out") == "1")
    ids = tuple(x for x in f.get("gateway_ids", "").split(",") if x)
    return DeliveryReport(f["message_id"], f["phone"], f["status"], f["carrier_code"], f["gateway"], ids)  # type: ignore[arg-type]


class EventRelay:
    """Hands the events stream to an :class:`EventSink`, acking each event only after the sink returned
    (at-least-once: a sink must tolerate a repeat after a crash)."""

    def __init__(self, store: MessageStore, sink: EventSink, consumer: str = "relay") -> None:
        self.store, self.sink, self.consumer = store, sink, consumer

    async def run_once(self, block_ms: int = 200) -> int:
        r = self.store.redis
        try:
            got = await r.xreadgroup("sink", self.consumer, {self.store.events: "0"}, count=500)
            if not got or not got[0][1]:
                got = await r.xreadgroup("sink", self.consumer, {self.store.events: ">"}, count=500, block=block_ms)
        except ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            log.warning("events group is gone (Redis lost its data?): recreating it")
            await self.store.ensure_groups()
            return 0
        entries = got[0][1] if got else []
        batch = getattr(self.sink, "on_outcomes", None)  # a sink that writes many outcomes at once
        done: list[Any] = []
        outcomes: list[DeliveryReport | SentReport] = []
        # a sink that says it never reads a report's phone (SQL keeps its own masked copy) is spared opening it
        phones = getattr(self.sink, "report_phones", True)
        for entry_id, fields in entries:
            event = event_from_fields(fields, self.store.seal, report_phones=phones)
            if isinstance(event, InboundMessage):
                if outcomes:
                    await batch(outcomes)  # type: ignore[misc]
                    outcomes = []
                await self.sink.on_inbound(event)
            elif batch is not None:
                outcomes.append(event)
            elif isinstance(event, SentReport):
                await self.sink.on_sent(event)
            else:
                await self.sink.on_report(event)
            done.append(entry_id)
        if outcomes:
            await batch(outcomes)  # type: ignore[misc]
        if done:
            pipe = r.pipeline(transaction=False)
            pipe.xack(self.store.events, "sink", *done)
            pipe.xdel(self.store.events, *done)  # trimmed by what the sink has made durable
            await pipe.execute()
        return len(entries)

    async def run(self, stop: asyncio.Event) -> None:
        await self.store.ensure_groups()
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("event relay failed; retrying")
                await asyncio.sleep(0.5)
