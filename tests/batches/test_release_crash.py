"""Kill the release worker mid-batch, start it again: every recipient is handed over exactly once.

Real processes (``smsguard batch worker``) on both backends. First run: the worker dies (``os._exit``) right
after the hand-over script of its third chunk and before that chunk's SQL commit, the worst moment.
Second run: SIGKILL at a random point while it works. Third run: to the end. Then the outbox must hold
each recipient exactly once, and SQL must say every recipient was submitted.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

import batches
from batches._tables import handovers, recipients
from engine import PROJECT_ROOT

N = 3000
CHUNK = 200


def _worker(backend, *extra: str, crash_after: int | None = None) -> subprocess.Popen[str]:
    env = backend.env()
    if crash_after is not None:
        env["SMSGUARD_RELEASE_CRASH_AFTER_CHUNKS"] = str(crash_after)
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsguard", "batch", "worker", "--chunk", str(CHUNK), "--lease", "1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
    )
    return proc


def _submitted(ctx, batch_id: int) -> int:
    with ctx.db.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(recipients)
            .where(recipients.c.batch_id == batch_id, recipients.c.status == "submitted")
        ).scalar_one()


def test_kill_and_restart_hands_over_exactly_once(ctx, tenant: int, backend) -> None:
    numbers = [f"139{i:08d}" for i in range(N)]
    b = batches.create_batch(ctx, tenant, content="【示例商城】您的快递已到驿站，请及时取件。", numbers=numbers)
    assert b["state"] == "scheduled" and b["total"] == N

    # 1. dies between the hand-over of chunk 3 and its SQL record
    p = _worker(backend, crash_after=3)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 17, err
    handed = [
        e for _, e in ctx.redis.xrange(f"{ctx.send_namespace}:outbox") if e[b"id"].decode().startswith(f"{b['id']}-")
    ]
    assert len(handed) == 3 * CHUNK and _submitted(ctx, b["id"]) == 2 * CHUNK  # the window is open

    # 2. SIGKILL while it works (throttled so that it is mid-batch)
    p = _worker(backend, "--pause", "0.05")
    deadline = time.monotonic() + 60
    while _submitted(ctx, b["id"]) < 6 * CHUNK:
        assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.stderr else ""
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    assert _submitted(ctx, b["id"]) < N

    # 3. to the end
    p = _worker(backend, "--until-idle")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err

    ids = [
        e[b"id"].decode()
        for _, e in ctx.redis.xrange(f"{ctx.send_namespace}:outbox")
        if e[b"id"].decode().startswith(f"{b['id']}-")
    ]
    dup = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert not dup, f"handed over twice: {dup[:5]}"
    assert set(ids) == {batches.message_id(b["id"], s) for s in range(1, N + 1)}  # none lost
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"submitted": N}
    assert batches.get_batch(ctx, tenant, b["id"])["state"] == "done"
    with ctx.db.connect() as conn:
        submitted, already = conn.execute(
            select(func.sum(handovers.c.submitted), func.sum(handovers.c.already)).where(
                handovers.c.batch_id == b["id"]
            )
        ).one()
    assert submitted == N - already and already >= CHUNK  # the crashed chunk was recorded, not re-sent
