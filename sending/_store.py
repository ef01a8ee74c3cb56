"""The durable side of sending, in Redis (no SQL): the outbox queue, each message's send state, the
gateway-id → our-id map, receipts that arrived before their id was known, and the events stream that
hands :class:`DeliveryReport` / :class:`InboundMessage` to the recipients/opt-out storage (issue 7).

Keys (``ns`` is the namespace):

* ``ns:outbox`` — stream of messages to send, consumer group ``workers`` (un-acked entries survive a crash);
* ``ns:msg:{id}`` — hash: state (queued, sending, submitted, delivered, failed, expired, rejected, unknown),
  gateway, phone, parts, gateway ids, per-part outcomes, carrier code;
* ``ns:gwid:{gateway}:{gateway id}`` — our id (expires after ``id_ttl``);
* ``ns:orphan:{gateway}:{gateway id}`` and ``ns:orphans:{gateway}:{phone}`` — a receipt whose gateway id is
  not mapped (yet): the submit response was lost in a crash, or is still being recorded;
* ``ns:events`` — stream of outcomes (``type`` report | inbound), consumed by :class:`EventRelay`.

Every state change is one Lua script, so a receipt racing its own submit response, a crash between
two writes, or two workers never leave a half-applied state; a final outcome and its event are
written together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sending._gateway import DeliveryReport, EventSink, InboundMessage, OutboundMessage, Receipt, SubmitResult

log = logging.getLogger(__name__)

FINAL = ("submitted", "delivered", "failed", "expired", "rejected", "unknown")

# Shared Lua: apply one part's receipt to our message; emits the event when the last part is in.
_APPLY = """
local function apply(ns, our, gateway, gw_id, status, carrier)
  local key = ns .. ':msg:' .. our
  if redis.call('HSETNX', key, 'p:' .. gw_id, status) == 0 then return 'dup' end
  if status ~= 'delivered' and redis.call('HEXISTS', key, 'bad') == 0 then
    redis.call('HSET', key, 'bad', status, 'carrier_code', carrier)
  end
  local done = redis.call('HINCRBY', key, 'done', 1)
  local parts = tonumber(redis.call('HGET', key, 'parts') or '1')
  if done < parts then return 'partial' end
  local final = redis.call('HGET', key, 'bad') or 'delivered'
  local code = redis.call('HGET', key, 'carrier_code') or carrier
  redis.call('HSET', key, 'state', final, 'carrier_code', code)
  redis.call('XADD', ns .. ':events', '*', 'type', 'report', 'message_id', our,
    'phone', redis.call('HGET', key, 'phone') or '', 'status', final, 'carrier_code', code,
    'gateway', gateway, 'gateway_ids', redis.call('HGET', key, 'gw_ids') or '')
  return final
end
"""

# KEYS[1] msg key. ARGV: gateway, phone. -> 'go' | 'done' | 'in_doubt:<gateway>'
_BEGIN = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'sending' then return 'in_doubt:' .. (redis.call('HGET', KEYS[1], 'gateway') or '') end
if state and state ~= 'queued' then return 'done' end
redis.call('HSET', KEYS[1], 'state', 'sending', 'gateway', ARGV[1], 'phone', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 'go'
"""

# ARGV: ns, our id, gateway, ttl, gateway ids...
_RECORD = _APPLY + """
local ns, our, gateway, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = ns .. ':msg:' .. our
local ids = {}
for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
redis.call('HSET', key, 'state', 'submitted', 'gateway', gateway, 'parts', #ids, 'gw_ids', table.concat(ids, ','))
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
"""

# ARGV: ns, gateway, gateway id, status, carrier code, phone, ttl
_RECEIPT = _APPLY + """
local ns, gateway, gw_id, status, carrier, phone, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
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
"""

# An in-doubt message (sent, response lost): adopt an orphan receipt for the same gateway and phone.
# ARGV: ns, our id, gateway, phone, ttl -> final state or 'none'
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
    redis.call('SET', ns .. ':gwid:' .. gateway .. ':' .. gw_id, our, 'EX', ttl)
    return apply(ns, our, gateway, gw_id, o[1], o[2])
  end
end
return 'none'
"""

# KEYS[1] msg key. ARGV: ns, our id, state, status for the event, carrier code, gateway
_FINISH = """
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'carrier_code', ARGV[5], 'gateway', ARGV[6])
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


class MessageStore:
    def __init__(self, redis: Any, namespace: str = "smsguard:send", *, id_ttl: int = 7 * 86400) -> None:
        self.redis = redis
        self.ns = namespace
        self.id_ttl = id_ttl
        self.outbox = f"{namespace}:outbox"
        self.events = f"{namespace}:events"
        self._begin = redis.register_script(_BEGIN)
        self._record = redis.register_script(_RECORD)
        self._receipt = redis.register_script(_RECEIPT)
        self._resolve = redis.register_script(_RESOLVE)
        self._finish = redis.register_script(_FINISH)

    def msg_key(self, message_id: str) -> str:
        return f"{self.ns}:msg:{message_id}"

    # -- outbox ---------------------------------------------------------------------------------------

    async def ensure_groups(self) -> None:
        for stream, group in ((self.outbox, "workers"), (self.events, "sink")):
            with contextlib.suppress(Exception):  # BUSYGROUP: already there
                await self.redis.xgroup_create(stream, group, id="0", mkstream=True)

    async def enqueue(self, messages: list[OutboundMessage]) -> None:
        """Queue messages for sending (the release step of issue 7 calls this)."""
        pipe = self.redis.pipeline(transaction=False)
        for m in messages:
            pipe.hsetnx(self.msg_key(m.id), "state", "queued")
            pipe.hset(self.msg_key(m.id), "phone", m.phone)
            pipe.xadd(self.outbox, m.to_fields())
        await pipe.execute()

    async def recover(self, consumer: str, count: int = 1000) -> list:
        """This consumer's entries read but never acknowledged (it crashed): taken again after a restart."""
        got = await self.redis.xreadgroup("workers", consumer, {self.outbox: "0"}, count=count)
        return [e for e in got[0][1] if e[1]] if got else []

    async def claim(self, consumer: str, count: int, *, block_ms: int = 200, min_idle_ms: int | None = None) -> list:
        """New entries; with ``min_idle_ms``, first those another (dead) worker left that long."""
        if min_idle_ms is not None:
            with contextlib.suppress(Exception):
                _, stolen, *_ = await self.redis.xautoclaim(
                    self.outbox, "workers", consumer, min_idle_ms, "0-0", count=count
                )
                if stolen:
                    return [e for e in stolen if e[1]]
        new = await self.redis.xreadgroup("workers", consumer, {self.outbox: ">"}, count=count, block=block_ms)
        return new[0][1] if new else []

    async def ack(self, entry_ids: list[Any]) -> None:
        if entry_ids:
            await self.redis.xack(self.outbox, "workers", *entry_ids)

    async def backlog(self) -> int:
        """Messages queued or claimed but not yet acknowledged."""
        groups = await self.redis.xinfo_groups(self.outbox)
        for g in groups:
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            if name == "workers":
                return int(g.get("lag") or 0) + int(g["pending"])
        return 0

    # -- send state -----------------------------------------------------------------------------------

    async def begin(self, message: OutboundMessage, gateway: str) -> str:
        res = await self._begin(keys=[self.msg_key(message.id)], args=[gateway, message.phone])
        return res.decode() if isinstance(res, bytes) else res

    async def record_submitted(self, result: SubmitResult) -> str:
        res = await self._record(args=[self.ns, result.message_id, result.gateway, self.id_ttl, *result.gateway_ids])
        return res.decode() if isinstance(res, bytes) else res

    async def release(self, message: OutboundMessage) -> None:
        """Back to queued: nothing is in flight (before a backoff or a failover)."""
        await self.redis.hset(self.msg_key(message.id), "state", "queued")

    async def reject(self, message: OutboundMessage, gateway: str, carrier_code: str) -> None:
        """A permanent refusal: the recipient's outcome is failed, with the carrier's code."""
        await self._finish(
            keys=[self.msg_key(message.id)], args=[self.ns, message.id, "rejected", "failed", carrier_code, gateway]
        )

    async def mark_unknown(self, message: OutboundMessage, gateway: str) -> None:
        await self._finish(
            keys=[self.msg_key(message.id)], args=[self.ns, message.id, "unknown", "unknown", "in_doubt", gateway]
        )

    async def resolve_in_doubt(self, message: OutboundMessage, gateway: str) -> str:
        res = await self._resolve(args=[self.ns, message.id, gateway, message.phone, self.id_ttl])
        return res.decode() if isinstance(res, bytes) else res

    async def state(self, message_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.msg_key(message_id))
        return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in raw.items()}

    # -- receipts and MO (GatewayEvents) --------------------------------------------------------------

    async def on_receipt(self, receipt: Receipt) -> None:
        if receipt.status == "unknown":  # ACCEPTD / ENROUTE: not an outcome yet
            return
        await self._receipt(
            args=[self.ns, receipt.gateway, receipt.gateway_id, receipt.status, receipt.carrier_code, receipt.phone,
                  self.id_ttl]
        )

    async def on_inbound(self, message: InboundMessage) -> None:
        await self.redis.xadd(
            self.events,
            {"type": "inbound", "phone": message.phone, "text": message.text, "gateway": message.gateway,
             "to": message.to, "opt_out": "1" if message.opt_out else "0"},
        )


def _decode(fields: dict[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()}


def event_from_fields(fields: dict[Any, Any]) -> DeliveryReport | InboundMessage:
    f = _decode(fields)
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
        got = await r.xreadgroup("sink", self.consumer, {self.store.events: "0"}, count=500)
        if not got or not got[0][1]:
            got = await r.xreadgroup("sink", self.consumer, {self.store.events: ">"}, count=500, block=block_ms)
        entries = got[0][1] if got else []
        for entry_id, fields in entries:
            event = event_from_fields(fields)
            if isinstance(event, InboundMessage):
                await self.sink.on_inbound(event)
            else:
                await self.sink.on_report(event)
            await r.xack(self.store.events, "sink", entry_id)
        return len(entries)

    async def run(self, stop: asyncio.Event) -> None:
        await self.store.ensure_groups()
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("event relay failed; retrying")
                await asyncio.sleep(0.5)
