"""Bench: webhook events delivered per second, and whether one slow tenant delays the others.

    .venv/bin/python bench/webhooks.py                       # SQLite file in a temp dir
    .venv/bin/python bench/webhooks.py --database-url postgresql://postgres@127.0.0.1:5432/test

One run, two phases, the real ``Dispatcher`` (as the ``webhooks`` role runs it) against the real receiver
process of the tests (``tests/webhooks/receiver.py``, 127.0.0.1 only):

1. baseline: ``--fast`` tenants, ``--events`` each, every receiver answers 200 at once;
2. the same fast tenants and events again, plus one slow tenant whose receiver takes ``--slow`` seconds per
   answer (``--events`` of its own, queued first, so they are the oldest).

``--rounds`` times, alternating. Reported: the fast tenants' events/s in each phase, their ratio per round
and its median (1.0 = the slow tenant costs them nothing), and everything delivered per second in phase 2.
Bounded: at most ``--timeout`` seconds per phase. The schema (PostgreSQL) or the file (SQLite) is private to
the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "webhooks"))


def _engine(url: str | None, tmp: Path):
    from smsguard.storage import make_engine

    if url is None:
        return make_engine(f"sqlite:///{tmp / 'bench.db'}"), None
    import psycopg

    schema = f"whbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    from urllib.parse import quote

    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    sa_url += ("&" if "?" in sa_url else "?") + "options=" + quote(f"-csearch_path={schema}")
    return make_engine(sa_url), schema


def _emit(db, tenant: int, n: int, tag: str) -> None:
    from smsguard import webhooks

    for start in range(0, n, 200):
        with db.begin() as conn:
            for i in range(start, min(n, start + 200)):
                webhooks.emit(conn, tenant_id=tenant, event_type="message.delivered", subject=f"message:{tag}-{i}",
                              payload={"message_id": f"{tag}-{i}", "phone": "138****1234", "status": "delivered"})


def _delivered(db, endpoint_ids: list[int]) -> int:
    from sqlalchemy import func, select

    from smsguard.webhooks._tables import deliveries

    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(deliveries).where(
            deliveries.c.endpoint_id.in_(endpoint_ids), deliveries.c.status == "delivered")).scalar_one()


def _phase(db, fast_eps: list[int], total_fast: int, all_eps: list[int], timeout: float) -> dict:
    """Run one dispatcher until the fast endpoints are all delivered (or timeout)."""
    from smsguard._roles import run_async
    from smsguard.webhooks import Dispatcher

    stop = threading.Event()
    d = Dispatcher(db, worker_id=f"bench-{uuid.uuid4().hex[:6]}", poll=0.05, allow_private=True)  # 127.0.0.1
    before_all = _delivered(db, all_eps)
    thread = threading.Thread(target=run_async, args=(stop, d.run), daemon=True)
    t0 = time.perf_counter()
    thread.start()
    done = 0
    while time.perf_counter() - t0 < timeout:
        done = _delivered(db, fast_eps)
        if done >= total_fast:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    all_done = _delivered(db, all_eps) - before_all
    stop.set()
    thread.join(60)
    return {"fast_delivered": done, "seconds": round(elapsed, 3), "fast_per_s": round(done / elapsed, 1),
            "all_delivered": all_done, "all_per_s": round(all_done / elapsed, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a SQLite file)")
    p.add_argument("--fast", type=int, default=4, help="fast tenants")
    p.add_argument("--events", type=int, default=400, help="events per tenant and phase (at most 5000)")
    p.add_argument("--slow", type=float, default=2.0, help="seconds the slow receiver takes per answer")
    p.add_argument("--timeout", type=float, default=120.0, help="longest phase, seconds")
    p.add_argument("--rounds", type=int, default=3, help="baseline + mixed pairs (at most 5)")
    args = p.parse_args()
    args.events, args.rounds = min(args.events, 5000), max(1, min(args.rounds, 5))

    from webhook_support import Receiver

    from smsguard import webhooks
    from smsguard.storage import create_tenant, migrate

    tmp = Path(tempfile.mkdtemp(prefix="whbench-"))
    db, schema = _engine(args.database_url, tmp)
    receiver = Receiver()
    try:
        migrate(db)
        tag = uuid.uuid4().hex[:6]
        fast_eps, fast_tenants = [], []
        for i in range(args.fast):
            t = create_tenant(db, f"fast-{tag}-{i}").id
            fast_tenants.append(t)
            fast_eps.append(webhooks.create_endpoint(db, t, url=receiver.url(f"/fast{i}"), events=["*"],
                                                     max_concurrency=4, timeout=10, actor="bench")["id"])
        slow_t = create_tenant(db, f"slow-{tag}").id
        receiver.script("/slow", [], default=f"slow:{args.slow}")
        slow_ep = webhooks.create_endpoint(db, slow_t, url=receiver.url("/slow"), events=["*"], max_concurrency=4,
                                           timeout=args.slow + 5, enabled=False, actor="bench")["id"]
        for t in fast_tenants:  # warm-up, not measured: connections, the first claims, the SQL caches
            _emit(db, t, 20, f"w{t}")
        _phase(db, fast_eps, args.fast * 20, fast_eps, args.timeout)
        rounds = []
        for n in range(args.rounds):  # baseline and mixed alternate: a load change on the host hits both alike
            already = _delivered(db, fast_eps)
            webhooks.update_endpoint(db, slow_t, slow_ep, enabled=False, actor="bench")  # silent in the baseline
            for t in fast_tenants:
                _emit(db, t, args.events, f"a{n}-{t}")
            base = _phase(db, fast_eps, already + args.fast * args.events, fast_eps, args.timeout)
            base["fast_delivered"] -= already
            base["fast_per_s"] = base["all_per_s"] = round(base["fast_delivered"] / base["seconds"], 1)

            already = _delivered(db, fast_eps)
            webhooks.update_endpoint(db, slow_t, slow_ep, enabled=True, actor="bench")
            _emit(db, slow_t, args.events, f"slow{n}")  # queued first: the oldest due deliveries are the slow ones
            for t in fast_tenants:
                _emit(db, t, args.events, f"b{n}-{t}")
            mixed = _phase(db, fast_eps, already + args.fast * args.events, [*fast_eps, slow_ep], args.timeout)
            mixed["fast_delivered"] -= already
            mixed["fast_per_s"] = round(mixed["fast_delivered"] / mixed["seconds"], 1)
            rounds.append({"baseline": base, "with_slow_tenant": mixed,
                           "ratio": round(mixed["fast_per_s"] / base["fast_per_s"], 3)})
        ratios = sorted(r["ratio"] for r in rounds)
        result = {
            "backend": db.dialect.name, "fast_tenants": args.fast, "events_per_tenant": args.events,
            "slow_answer_s": args.slow, "rounds": rounds, "slow_delivered": _delivered(db, [slow_ep]),
            "ratio_fast_with_vs_without_slow_median": ratios[len(ratios) // 2],
        }
        print(json.dumps(result, indent=2))
    finally:
        receiver.close()
        db.dispose()
        if schema:
            import psycopg

            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
