"""Bench: three hosts (``smsguard serve``, all roles, own data dirs and ports) on one PostgreSQL + a private Redis
send one batch through a CMPP and an SMPP peer while one host is ``kill -9``ed, Redis restarted and the CMPP
peer's connections dropped; the same batch on two loopback channels with no faults is the baseline.

    .venv/bin/python bench/hosts.py --n 5000 [--rate 0]

Reports per run: recipients, seconds from submit to ``done``, recipients/s, the final counts, what the peers
accepted and how many numbers reached a peer twice (must be 0), and the ratio of the fault run's rate to the
baseline's. The scenario is tests/hosts_support.py's ``fault_run`` (the test asserts on it; this measures).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "sending"))  # the test peers (not shipped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=0.0, help="msgs/s per channel (0 = unlimited)")
    parser.add_argument("--database", default=os.environ.get("SMSGUARD_TEST_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    import psycopg
    from hosts_support import fault_run

    from smsguard.storage import make_engine

    results = {}
    for name, loopback in (("loopback baseline", True), ("cmpp+smpp with faults", False)):
        schema = f"bench_hosts_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.database, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{args.database}{'&' if '?' in args.database else '?'}options=-csearch_path%3D{schema}"
        db = make_engine("postgresql+psycopg" + url[len("postgresql"):])
        try:
            with tempfile.TemporaryDirectory(prefix="bench-hosts-") as tmp:
                root = Path(tmp)
                env = {k: v for k, v in os.environ.items()
                       if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
                env.update(DATABASE_URL=url, SMSGUARD_REDIS_NAMESPACE=f"bench:{schema}")
                t0 = time.monotonic()
                run = fault_run(root, env, db, root / "keys", n=args.n, opted=min(5, args.n // 10),
                                rate=args.rate, faults=not loopback, loopback=loopback, timeout=1800)
                twice = sum(1 for v in run["accepted"].values() if v > 1)
                results[name] = {
                    "recipients": args.n,
                    "submit_to_done_s": round(run["elapsed_s"], 2),
                    "submit_s": round(run["submit_s"], 2),
                    "recipients_per_s": round(args.n / run["elapsed_s"], 1),
                    "counts": run["counts"],
                    "accepted_at_peers": run["accepted_per_peer"],
                    "numbers_twice_at_a_peer": twice,
                    "wall_s": round(time.monotonic() - t0, 1),
                }
        finally:
            db.dispose()
            with psycopg.connect(args.database, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        print(json.dumps({name: results[name]}, ensure_ascii=False), flush=True)
    base, faulty = results["loopback baseline"], results["cmpp+smpp with faults"]
    print(f"fault run / baseline, recipients/s: {faulty['recipients_per_s'] / base['recipients_per_s']:.2f}")


if __name__ == "__main__":
    main()
