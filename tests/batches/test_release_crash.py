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

from smsguard import batches
from smsguard.batches._tables import handovers, recipients
from smsguard.engine import PROJECT_ROOT

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
    # The worker releases every due batch of the database, and the chunks counted below must be this batch's:
    # batches earlier tests left due (scheduled or releasing) are set aside, as review tests empty their queue.
    from sqlalchemy import update

    from smsguard.batches._tables import batches as batch_rows

    with ctx.db.begin() as conn:
        conn.execute(update(batch_rows).where(batch_rows.c.id != b["id"],
                                              batch_rows.c.state.in_(("scheduled", "releasing")))
                     .values(state="cancelled"))

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
    assert batches.get_batch(ctx, tenant, b["id"])["state"] == "sending"  # handed over, receipts to come
    with ctx.db.connect() as conn:
        submitted, already = conn.execute(
            select(func.sum(handovers.c.submitted), func.sum(handovers.c.already)).where(
                handovers.c.batch_id == b["id"]
            )
        ).one()
    assert submitted == N - already and already >= CHUNK  # the crashed chunk was recorded, not re-sent


def test_a_chunk_reported_before_the_restart_still_gets_its_record(ctx, tenant: int, backend) -> None:
    """Issue 15, failure 8: the worker dies right after handing a chunk over, before its SQL record; the
    gateway sends it and every report is back (the recipients are final) before the worker starts again.
    The chunk must still get its hand-over row, its ``release`` audit event and its ``submitted_at``."""
    import json

    from smsguard.audit._tables import events
    from smsguard.sending import DeliveryReport

    n = 2 * CHUNK
    b = batches.create_batch(ctx, tenant, content="【示例商城】您的快递已到驿站，请及时取件。",
                             numbers=[f"136{i:08d}" for i in range(n)])
    p = _worker(backend, crash_after=1)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 17, err
    for seq in range(1, CHUNK + 1):  # the reports of the crashed chunk, through the relay's own sink function
        report = DeliveryReport(batches.message_id(b["id"], seq), "", "delivered", "DELIVRD", "loop", (f"g{seq}",))
        assert batches.apply_report(ctx, report)

    p = _worker(backend, "--until-idle")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err

    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(recipients.c.seq, recipients.c.status, recipients.c.submitted_at)
            .where(recipients.c.batch_id == b["id"]).order_by(recipients.c.seq)
        ).all()
        ranges = conn.execute(
            select(handovers.c.lo, handovers.c.hi, handovers.c.already).where(handovers.c.batch_id == b["id"])
        ).all()
        released = [
            json.loads(e.payload) for e in conn.execute(
                select(events.c.payload).where(events.c.event_type == "release", events.c.subject == f"batch:{b['id']}")
            )
        ]
    assert [r.status for r in rows] == ["delivered"] * CHUNK + ["submitted"] * CHUNK
    assert all(r.submitted_at is not None for r in rows), "a handed-over recipient without submitted_at"
    assert (1, CHUNK, CHUNK) in [tuple(r) for r in ranges], ranges  # recorded as handed over by the crashed run
    assert {(e["lo"], e["hi"]) for e in released} == {(1, CHUNK), (CHUNK + 1, n)}
