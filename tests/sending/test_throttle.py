"""The throttle contract, for all three implementations: ``acquire(n)`` reserves n sends, returns the
seconds it slept (never negative), and over any run the sends never go faster than ``rate`` allows
(the first ``burst`` at once). A lower bound only: how much slower a loaded machine is is not the
throttle's business (accuracy is measured in bench/, not asserted here)."""

from __future__ import annotations

import time
import uuid

import pytest
import redis.asyncio as aioredis
from sending_helpers import run

from smsguard.sending import LocalThrottle, RedisThrottle, Throttle, Unlimited

RATE = 200.0
KINDS = ["redis", "local", "unlimited"]


def _make(kind: str, client: aioredis.Redis) -> Throttle:
    if kind == "redis":
        return RedisThrottle(client, f"sgtest:throttle:{uuid.uuid4().hex[:8]}", RATE)
    return LocalThrottle(RATE) if kind == "local" else Unlimited()


@pytest.mark.parametrize("kind", KINDS)
def test_throttle_contract(kind: str, redis_url: str) -> None:
    async def go() -> tuple[Throttle, float, list[float]]:
        client = aioredis.Redis.from_url(redis_url)
        throttle = _make(kind, client)
        start = time.monotonic()
        slept = [await throttle.acquire(1) for _ in range(20)] + [await throttle.acquire(5) for _ in range(4)]
        elapsed = time.monotonic() - start
        await client.aclose()
        return throttle, elapsed, slept

    throttle, elapsed, slept = run(go())
    assert all(s >= 0 for s in slept)
    assert throttle.rate == (float("inf") if kind == "unlimited" else RATE)
    # a call reserving n sends returns when they may go; the one after it waits n/rate more: the last of
    # these calls returns 35 sends' worth after the first, at the earliest
    assert elapsed >= (35 / throttle.rate) * 0.98


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_throttle_refuses_a_rate_that_is_not_positive(kind: str, redis_url: str) -> None:
    with pytest.raises(ValueError):
        RedisThrottle(aioredis.Redis.from_url(redis_url), "k", 0) if kind == "redis" else LocalThrottle(-1)
