"""Per-tenant rate limits: a shared Redis window counter, spent by each process from leased blocks.

A request's tokens come from a local lease when it has enough; otherwise one Redis round trip leases a block
(a Lua script: INCRBY the tenant's window counter) and, in the same round trip, GETs the verdict-cache keys the
request needs, so a cache miss costs no extra round trip.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from typing import Any

import redis.asyncio as aioredis

from smsguard.core import LimitError, UnavailableError
from smsguard.storage import KeyInfo

from . import _metrics as metrics

# KEYS[1] = the tenant's rate window counter, KEYS[2..] = verdict cache keys; ARGV = cost, window TTL.
_LIMIT_AND_LOOKUP = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if #KEYS > 1 then return {n, redis.call('MGET', unpack(KEYS, 2))} end
return {n, {}}
"""

LEASE_MAX = 100  # rate-limit tokens leased from Redis at once: min(limit // 10, LEASE_MAX), at least 1


class RateLimited(LimitError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, where=None, retry_after=retry_after)


class Unavailable(UnavailableError):
    code = "unavailable"


@dataclasses.dataclass(slots=True)
class _Lease:
    """Rate-limit tokens this process leased from a tenant's shared window counter and has not spent yet."""

    window: int
    tokens: int = 0
    refill: asyncio.Future | None = None  # set while a request is leasing more
    exhausted: bool = False  # the shared counter reached the limit: nothing more can be granted in this window


class RateLimiter:
    """Admits requests against each tenant's limit of messages per ``window`` seconds (``default`` unless the
    key has its own), fetching verdict-cache keys in the same Redis round trip."""

    def __init__(self, *, default: int, window: int, prefix: str) -> None:
        self.default = default
        self.window = window
        self._prefix = prefix  # "<namespace>:rl:"
        self._redis: aioredis.Redis | None = None
        self._script: Any = None
        self._leases: dict[int, _Lease] = {}  # tenant id -> tokens leased from the shared window counter

    def bind(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_LIMIT_AND_LOOKUP)

    def take(self, key: KeyInfo, cost: int) -> bool:
        """Spend ``cost`` from this process's lease without awaiting anything; False when the lease cannot pay it
        now (then ``admit`` leases more, or refuses). The common case of a request: no Redis, no await."""
        lease = self._leases.get(key.tenant_id)
        if lease is None or lease.tokens < cost or lease.window != int(time.time() // self.window):
            return False
        lease.tokens -= cost
        return True

    async def admit(self, key: KeyInfo, cost: int, lookups: list[str]) -> list[bytes | None]:
        """Spend ``cost`` of the tenant's rate limit (raise RateLimited when over it) and GET the verdict keys
        ``lookups``. Tokens come from a local lease when it has enough; otherwise one Redis round trip leases a
        block from the tenant's shared window counter (INCRBY, all processes share it) and does the GETs too.
        Only tokens under the limit are ever granted, so all processes together never admit more than the limit;
        the price is that up to one block (min(limit // 10, LEASE_MAX) - 1 tokens) per process per window may stay
        unspent in one process while another is refused. Limits under 20 lease one token at a time (exact). Once
        the shared counter has reached the limit, this process refuses the rest of the window without asking Redis
        (its counter is already over the limit, so counting those refusals there would change nothing)."""
        limit = key.rate_limit or self.default
        block = max(1, min(limit // 10, LEASE_MAX))
        while True:
            now = time.time()
            window = int(now // self.window)
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
                    return await self._redis.mget(lookups)
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
        rate_key = f"{self._prefix}{key.tenant_id}:{window}"
        try:
            count, found = await self._script(keys=[rate_key, *lookups], args=[grab, self.window * 2])
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
        metrics.RATE_LIMITED.inc()
        retry = max(1, math.ceil((window + 1) * self.window - now))
        return RateLimited(f"tenant {key.tenant!r} is over its limit of {limit} messages per {self.window} s", retry)
