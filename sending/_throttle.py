"""Per-channel throttles (messages per second from policy).

:class:`RedisThrottle` is a GCRA shared by every worker through one Redis key: each call *reserves*
``n`` sends and returns how long to wait before making them, with Redis's own clock, so N workers on
N machines together never exceed the rate. :class:`LocalThrottle` is the same algorithm in-process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

# KEYS[1] = theoretical arrival time (µs). ARGV = emission interval µs, burst tolerance µs, n.
# Returns the µs to wait before sending the n reserved messages.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + n * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
return wait
"""


class Throttle(Protocol):
    rate: float

    async def acquire(self, n: int = 1) -> float:
        """Reserve ``n`` sends, sleep until they may go, return the seconds slept."""
        ...


class RedisThrottle:
    def __init__(self, redis: Any, key: str, rate: float, *, burst: int = 1) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.redis, self.key, self.rate, self.burst = redis, key, rate, burst
        self._script = redis.register_script(_GCRA)

    async def acquire(self, n: int = 1) -> float:
        interval = 1_000_000 / self.rate
        wait_us = await self._script(keys=[self.key], args=[interval, interval * (self.burst - 1), n])
        wait = int(wait_us) / 1_000_000
        if wait > 0:
            await asyncio.sleep(wait)
        return wait


class LocalThrottle:
    """The same GCRA for one process (no Redis configured)."""

    def __init__(
        self, rate: float, *, burst: int = 1, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate, self.burst = rate, burst
        self._tat = 0.0
        self._clock, self._sleep = clock, sleep

    async def acquire(self, n: int = 1) -> float:
        now = self._clock()
        interval = 1 / self.rate
        tat = max(self._tat, now)
        self._tat = tat + n * interval
        wait = max(0.0, tat - interval * (self.burst - 1) - now)
        if wait > 0:
            await self._sleep(wait)
        return wait


class Unlimited:
    rate = float("inf")

    async def acquire(self, n: int = 1) -> float:
        return 0.0
