"""The gateway role: a :class:`GatewayWorker` over the channels of ``channels.yaml``, plus what a deployment
needs around it — a heartbeat per process (``smsguard channel list``, "waiting for a channel"), the
per-channel receipt policy and receipt deadline, and the check that binds and unbinds each channel.

Redis keys (``ns`` is the sending namespace), besides those of ``MessageStore``:

* ``ns:gateways`` — sorted set: gateway process name → time of its last heartbeat;
* ``ns:gw:{process}`` — JSON: that process's channels (connected, circuit, throughput), expires with it;
* ``ns:outstanding:{channel}`` — submitted messages awaiting a receipt, scored by submit time. A message still
  there ``receipt_deadline`` seconds later gets the outcome ``unknown`` (carrier code ``no_receipt``), so a
  batch finishes even when a carrier never reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from smsguard.core import SmsguardError
from smsguard.sending._channels import ChannelRouter, ChannelSpec, build_gateway
from smsguard.sending._circuit import CircuitBreaker
from smsguard.sending._gateway import SubmitResult, _NotStarted
from smsguard.sending._journal import GroupCommit, SentJournal
from smsguard.sending._retry import RetryPolicy
from smsguard.sending._sealing import PLAIN, PhoneSeal
from smsguard.sending._store import MessageStore, redis_client
from smsguard.sending._throttle import RedisThrottle, Throttle, Unlimited
from smsguard.sending._worker import Channel, GatewayWorker

log = logging.getLogger(__name__)

HEARTBEAT_TTL = 5.0
"""Seconds after its last heartbeat a gateway process counts as gone."""

# KEYS[1] msg key. ARGV: ns, our id, gateway. A message still awaiting its receipt becomes unknown.
_EXPIRE = """
redis.call('ZREM', ARGV[1] .. ':outstanding:' .. ARGV[3], ARGV[2])
if redis.call('HGET', KEYS[1], 'state') ~= 'submitted' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'unknown', 'carrier_code', 'no_receipt')
redis.call('XADD', ARGV[1] .. ':events', '*', 'type', 'report', 'message_id', ARGV[2],
  'phone', redis.call('HGET', KEYS[1], 'phone') or '', 'status', 'unknown', 'carrier_code', 'no_receipt',
  'gateway', ARGV[3], 'gateway_ids', redis.call('HGET', KEYS[1], 'gw_ids') or '')
return 1
"""


class ChannelStore(MessageStore):
    """``MessageStore`` that applies each channel's receipt policy and tracks receipts still outstanding."""

    def __init__(
        self, redis: Any, namespace: str, specs: Iterable[ChannelSpec], *, seal: PhoneSeal = PLAIN,
        sent_events: bool = True,
    ) -> None:
        super().__init__(redis, namespace, seal=seal, sent_events=sent_events)
        self.specs = {s.name: s for s in specs}
        self.submitted: dict[str, int] = dict.fromkeys(self.specs, 0)
        self._expire = redis.register_script(_EXPIRE)

    def outstanding_key(self, channel: str) -> str:
        return f"{self.ns}:outstanding:{channel}"

    def _tracking(self, result: SubmitResult) -> tuple[str, float, str]:
        # Written by the record's own script, first: tracked before the submit is recorded (a crash in between is
        # impossible now, the script is atomic), and a receipt that raced ahead finalises it and removes it again.
        spec = self.specs.get(result.gateway)
        last = (result.gateway_ids[-1] if spec is not None and spec.receipts == "last_part"
                and len(result.gateway_ids) > 1 else "")
        return self.outstanding_key(result.gateway), time.time(), last

    async def record_submitted(self, result: SubmitResult) -> str:
        state = await super().record_submitted(result)
        self.submitted[result.gateway] = self.submitted.get(result.gateway, 0) + 1
        return state

    async def expire_overdue(self, now: float | None = None, limit: int = 1000) -> int:
        """Give every message past its channel's receipt deadline the outcome ``unknown``; returns how many."""
        now = time.time() if now is None else now
        n = 0
        for name, spec in self.specs.items():
            key = self.outstanding_key(name)
            while True:
                due = await self.redis.zrangebyscore(key, "-inf", now - spec.receipt_deadline, start=0, num=limit)
                for raw in due:
                    mid = raw.decode() if isinstance(raw, bytes) else raw
                    n += int(await self._expire(keys=[self.msg_key(mid)], args=[self.ns, mid, name]))
                if len(due) < limit:
                    break
        return n


async def outstanding_by_channel(redis: Any, namespace: str, channels: Iterable[str]) -> dict[str, int]:
    """Submitted messages still awaiting their receipt, per channel."""
    names = list(channels)
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.zcard(f"{namespace}:outstanding:{name}")
    return dict(zip(names, [int(x) for x in await pipe.execute()], strict=True))


def live_gateways(redis: Any, namespace: str, *, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Heartbeats of the gateway processes alive now (synchronous client): process → its channel snapshot."""
    now = time.time() if now is None else now
    names = [n.decode() if isinstance(n, bytes) else n
             for n in redis.zrangebyscore(f"{namespace}:gateways", now - HEARTBEAT_TTL, "+inf")]
    out: dict[str, dict[str, Any]] = {}
    for name, raw in zip(names, redis.mget([f"{namespace}:gw:{n}" for n in names]) if names else [], strict=True):
        if raw:
            out[name] = json.loads(raw)
    return out


class GatewayRole:
    """One gateway process's worker over ``specs``, until ``stop`` is set; raises if the worker dies."""

    def __init__(
        self,
        redis_url: str,
        namespace: str,
        specs: Iterable[ChannelSpec],
        *,
        process: str,
        file_name: str = "channels.yaml",
        env: Mapping[str, str] | None = None,
        in_doubt_grace: float = 10.0,
        sweep_every: float = 1.0,
        heartbeat_every: float = 1.0,
        seal: PhoneSeal = PLAIN,
        journal: SentJournal | None = None,
    ) -> None:
        self.redis_url, self.ns = redis_url, namespace
        self.journal = journal  # SQL learns each submit before its outbox entry is acked (sending/_journal.py)
        self.seal = seal
        self.specs = tuple(specs)
        self.process = process
        self.file_name, self.env = file_name, env
        self.in_doubt_grace = in_doubt_grace
        self.sweep_every, self.heartbeat_every = sweep_every, heartbeat_every
        self.worker: GatewayWorker | None = None
        self.store: ChannelStore | None = None

    def _channels(self, redis: Any) -> list[Channel]:
        out = []
        for i, spec in enumerate(self.specs):
            gateway = build_gateway(spec, self.env, name=self.file_name, index=i)
            throttle: Throttle = (
                RedisThrottle(redis, f"{self.ns}:throttle:{spec.name}", spec.rate) if spec.rate > 0 else Unlimited()
            )
            out.append(Channel(gateway, throttle, CircuitBreaker(open_for=1.0)))
        return out

    async def run(self, stop: asyncio.Event) -> None:
        redis = redis_client(self.redis_url)
        self.store = store = ChannelStore(redis, self.ns, self.specs, seal=self.seal,
                                          sent_events=self.journal is None)
        try:
            self.worker = worker = GatewayWorker(
                store, self._channels(redis), ChannelRouter(self.specs), consumer=self.process,
                in_doubt_grace=self.in_doubt_grace, retry=RetryPolicy(base=0.05, max_delay=2.0),
                journal=None if self.journal is None else GroupCommit(self.journal),
            )
            await worker.start()
            tasks = [asyncio.create_task(worker.run(stop), name="gateway-worker"),
                     asyncio.create_task(self._every(stop, self.heartbeat_every, self._heartbeat), name="heartbeat"),
                     asyncio.create_task(self._every(stop, self.sweep_every, store.expire_overdue), name="deadline")]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a task that died takes the role down (the supervisor restarts it)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await worker.close()
                with contextlib.suppress(Exception):
                    await redis.zrem(f"{self.ns}:gateways", self.process)
                    await redis.delete(f"{self.ns}:gw:{self.process}")
        finally:
            await redis.aclose()

    @staticmethod
    async def _every(stop: asyncio.Event, seconds: float, fn: Any) -> None:
        while not stop.is_set():
            await fn()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

    def snapshot(self, elapsed: float, before: Mapping[str, int]) -> dict[str, Any]:
        assert self.worker is not None and self.store is not None
        channels = {}
        for spec in self.specs:
            ch = self.worker.channels[spec.name]
            sent = self.store.submitted.get(spec.name, 0)
            channels[spec.name] = {
                "protocol": spec.protocol,
                "state": "connected" if ch.gateway.connected else "down",
                "circuit": ch.breaker.state,
                "window": spec.window,
                "rate_limit": spec.rate,
                "throughput": round((sent - before.get(spec.name, 0)) / elapsed, 1) if elapsed > 0 else 0.0,
                "submitted": sent,
            }
        return {"process": self.process, "host": socket.gethostname(), "at": time.time(),
                "in_flight": len(self.worker._tasks), "channels": channels}

    _last: tuple[float, dict[str, int]] | None = None

    async def _heartbeat(self) -> None:
        assert self.store is not None
        now = time.monotonic()
        last_at, before = self._last or (now, dict(self.store.submitted))
        body = json.dumps(self.snapshot(now - last_at, before))
        self._last = (now, dict(self.store.submitted))
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.set(f"{self.ns}:gw:{self.process}", body, ex=int(HEARTBEAT_TTL * 2))
        pipe.zadd(f"{self.ns}:gateways", {self.process: time.time()})
        pipe.zremrangebyscore(f"{self.ns}:gateways", "-inf", time.time() - 3600)
        await pipe.execute()


def channel_table(redis: Any, namespace: str, specs: Iterable[ChannelSpec]) -> dict[str, Any]:
    """What ``channel list`` shows, from the gateway heartbeats and the outbox (a synchronous Redis client)."""
    beats = live_gateways(redis, namespace)
    specs = list(specs)
    pipe = redis.pipeline(transaction=False)
    for s in specs:
        pipe.zcard(f"{namespace}:outstanding:{s.name}")
    outstanding = pipe.execute()
    rows = []
    for spec, waiting in zip(specs, outstanding, strict=True):
        seen = [b["channels"][spec.name] for b in beats.values() if spec.name in b.get("channels", {})]
        connected = sum(1 for c in seen if c["state"] == "connected")
        circuits = sorted({c["circuit"] for c in seen})
        rows.append({
            "channel": spec.name,
            "protocol": spec.protocol,
            "state": "no gateway" if not seen else ("connected" if connected else "down"),
            "processes": f"{connected}/{len(seen)}",
            "circuit": ",".join(circuits) or "-",
            "throughput": round(sum(c["throughput"] for c in seen), 1),
            "rate_limit": spec.rate,
            "outstanding_receipts": int(waiting),
        })
    return {"gateways": len(beats), "outbox": _outbox_depth(redis, namespace), "channels": rows}


def _outbox_depth(redis: Any, namespace: str) -> int:
    """Messages in the outbox not yet acknowledged by a gateway (waiting + being worked on)."""
    try:
        groups = redis.xinfo_groups(f"{namespace}:outbox")
    except Exception:  # no outbox yet
        return 0
    for g in groups:
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        if name == "workers":
            return int(g.get("lag") or 0) + int(g["pending"])
    return 0


async def check_channel(spec: ChannelSpec, *, index: int = 0, file_name: str = "channels.yaml",
                        env: Mapping[str, str] | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Connect, bind (log in) and unbind one channel; the outcome as a row for ``smsguard channel check``."""
    t0 = time.monotonic()
    target = spec.url or (f"{spec.host}:{spec.port}" if spec.host else "-")
    row: dict[str, Any] = {"channel": spec.name, "protocol": spec.protocol, "target": target}
    try:
        gateway = build_gateway(spec, env, name=file_name, index=index)
    except SmsguardError as e:
        return {**row, "ok": False, "detail": str(e), "seconds": 0.0}
    try:
        if spec.protocol == "http":  # HTTP has no bind: check the provider's address takes a connection
            parts = urlsplit(spec.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
            writer.close()
            detail = "reachable (HTTP: no bind)"
        else:
            # a receipt or MO arriving during the check is refused, so the peer keeps it for the real worker
            await asyncio.wait_for(gateway.start(_NotStarted()), timeout)
            if not gateway.connected:
                raise OSError("not connected after start")
            detail = "connected, bound and unbound"
        ok = True
    except SmsguardError as e:
        ok, detail = False, str(e)
    except (OSError, TimeoutError) as e:
        ok, detail = False, f"cannot connect: {e or 'timed out'}"
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gateway.close(), timeout)
    return {**row, "ok": ok, "detail": detail, "seconds": round(time.monotonic() - t0, 3)}


__all__ = ["ChannelStore", "GatewayRole", "channel_table", "check_channel", "live_gateways", "outstanding_by_channel",
           "redis_client"]
