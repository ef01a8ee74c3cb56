"""Bench: the console's stats chart at millions of recipients, the rollup against scanning the recipients.

    .venv/bin/python bench/console_stats.py --backend sqlite --recipients 1000000
    .venv/bin/python bench/console_stats.py --backend postgresql --recipients 1000000

Builds one tenant's batches over the last 13 days (``--batches``, equal sizes, one content each, recipients in
final and pending states, failures with a few carrier codes) in a private database (a temp SQLite file, or a scratch
PostgreSQL schema dropped afterwards), with the migrations' triggers keeping ``recipient_rollup``. Then, in the same
run: the chart's two queries (``daily_states`` + ``failure_codes``, as the stats page calls them for 14 days) from
the rollup and from the recipients (``*_scan``, the query before the rollup), median of ``--repeat``, results
checked equal; and what the triggers cost the writers: ``--sample`` recipients inserted and then handed over
(``UPDATE … status='submitted'`` in chunks of 5,000, as the release does) with the triggers, and again without.
Bounded: the data size is the arguments', every step prints its time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text, update  # noqa: E402

from smsguard.batches._stats import daily_states, daily_states_scan, failure_codes, failure_codes_scan  # noqa: E402
from smsguard.batches._tables import batch_contents, batches, recipients  # noqa: E402
from smsguard.storage import create_tenant, make_engine, migrate  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"
STATES = (
    [("delivered", None, None)] * 80
    + [("failed", "MK:0001", None)] * 5
    + [("failed", "ID:0012", None)] * 2
    + [("expired", "EXPIRED", None)] * 2
    + [("unknown", None, "no report")]
    + [("submitted", None, None)] * 5
    + [("opted_out", None, None)] * 2
    + [("invalid", None, "duplicate number in this batch")] * 2
    + [("rejected", None, "blocked by screening")]
)
CARRIERS = ["mobile"] * 6 + ["unicom"] * 3 + ["telecom"] * 2 + ["broadnet"]
COLUMNS = (
    "batch_id",
    "seq",
    "phone_hash",
    "phone_masked",
    "carrier",
    "content_id",
    "status",
    "detail",
    "carrier_code",
    "submitted_at",
    "final_at",
)


def _batch(conn, tenant_id: int, at: datetime, n: int, state: str = "done") -> int:
    bid = conn.execute(
        insert(batches)
        .values(
            tenant_id=tenant_id,
            name=f"bench {at:%m-%d %H:%M}",
            kind="marketing",
            signature="示例商城",
            sender="0001",
            state=state,
            total=n,
            estimate_micros=n * 45_000,
            reserved_micros=0,
            cursor=n,
            created_at=at,
            updated_at=at,
            released_at=at,
            done_at=at,
            guarded=False,
        )
        .returning(batches.c.id)
    ).scalar_one()
    conn.execute(
        insert(batch_contents).values(
            batch_id=bid,
            content_id=1,
            content_hash="ab" * 32,
            text="【示例商城】双11大促，回T退订",
            spans="[]",
            segments=1,
            recipients=n,
            decision="pass",
            verdict="{}",
            review="none",
            cost_micros=n * 45_000,
        )
    )
    return bid


def _rows(rnd: random.Random, bid: int, n: int, at: datetime, status: str | None = None):
    for seq in range(1, n + 1):
        s, code, detail = (status, None, None) if status else rnd.choice(STATES)
        yield (
            bid,
            seq,
            f"{rnd.getrandbits(128):032x}",
            "138****0000",
            rnd.choice(CARRIERS),
            1,
            s,
            detail,
            code,
            at,
            at if s not in ("submitted", "queued") else None,
        )


def _write(db, rows) -> None:
    rows = list(rows)
    with db.begin() as conn:
        if conn.dialect.name == "postgresql":
            raw = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(f"COPY recipients ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
        else:
            conn.execute(insert(recipients), [dict(zip(COLUMNS, r, strict=True)) for r in rows])


def _median_ms(fn, repeat: int) -> tuple[float, float, object]:
    """Median and best of ``repeat`` runs, in ms (the best is the least disturbed by a busy machine)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times), out


def _server_ms(db, fn, repeat: int) -> float:
    """PostgreSQL only: the server's own execution time (EXPLAIN ANALYZE) of the statements ``fn`` runs, summed,
    best of ``repeat``: what the query costs the database, apart from the client and a busy machine's scheduling."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append((statement, parameters))

    event.listen(db, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(db, "before_cursor_execute", grab)
    best = float("inf")
    with db.connect() as conn:
        for _ in range(repeat):
            total = 0.0
            for statement, parameters in seen:
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters).scalar_one()
                total += plan[0]["Execution Time"]
            best = min(best, total)
    return best


def _handover(db, tenant_id: int, rnd: random.Random, n: int) -> tuple[float, float]:
    """Seconds to insert ``n`` queued recipients (one batch), and to hand them over in chunks of 5,000."""
    at = datetime.now(UTC)
    with db.begin() as conn:
        bid = _batch(conn, tenant_id, at, n, state="releasing")
    t0 = time.perf_counter()
    for lo in range(0, n, 20_000):
        _write(db, _offset(_rows(rnd, bid, min(20_000, n - lo), at, "queued"), lo))
    ins = time.perf_counter() - t0
    t0 = time.perf_counter()
    for lo in range(0, n, 5000):
        with db.begin() as conn:
            conn.execute(
                update(recipients)
                .where(recipients.c.batch_id == bid, recipients.c.seq > lo, recipients.c.seq <= lo + 5000)
                .values(status="submitted", submitted_at=at)
            )
    return ins, time.perf_counter() - t0


def _offset(rows, lo: int):
    for r in rows:
        yield (r[0], r[1] + lo, *r[2:])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--recipients", type=int, default=1_000_000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sample", type=int, default=100_000, help="recipients of the write-cost comparison")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    schema = None
    if args.backend == "sqlite":
        url = f"sqlite:///{tmp.name}/bench.db"
    else:
        import psycopg

        schema = f"stats_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG, autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    db = make_engine(url)
    rnd = random.Random(19)
    try:
        migrate(db)
        tenant = create_tenant(db, "bench-stats").id
        other = create_tenant(db, "bench-other").id  # a neighbour's batches: the queries must skip them
        per = args.recipients // args.batches
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        for i in range(args.batches):
            at = now - timedelta(days=13) + timedelta(seconds=int(13 * 86400 * i / args.batches))
            with db.begin() as conn:
                bid = _batch(conn, tenant if i % 10 else other, at, per)
            _write(db, _rows(rnd, bid, per, at))
        build = time.perf_counter() - t0
        if db.dialect.name == "postgresql":
            with db.begin() as conn:
                conn.execute(text("ANALYZE"))
        mine = per * sum(1 for i in range(args.batches) if i % 10)
        print(
            f"{args.backend}: built {per * args.batches:,} recipients in {args.batches} batches ({mine:,} of the "
            f"tenant's) in {build:.1f} s, triggers on"
        )
        ctx = SimpleNamespace(db=db)
        since = now - timedelta(days=14)
        roll_ms, roll_best, roll = _median_ms(
            lambda: (sorted(daily_states(ctx, tenant, since=since)), failure_codes(ctx, tenant, since=since)),
            args.repeat,
        )
        scan_ms, scan_best, scan = _median_ms(
            lambda: (sorted(daily_states_scan(ctx, tenant, since=since)), failure_codes_scan(ctx, tenant, since=since)),
            args.repeat,
        )
        assert roll == scan, "the rollup and the scan disagree"
        total = sum(n for _, _, n, _ in roll[0])
        assert total == mine, (total, mine)
        print(
            f"chart queries (daily_states + failure_codes, 14 days, {args.repeat} runs): rollup median "
            f"{roll_ms:.1f} ms (best {roll_best:.1f}), scan median {scan_ms:.1f} ms (best {scan_best:.1f}): "
            f"scan/rollup = {scan_ms / roll_ms:.1f}x (best {scan_best / roll_best:.1f}x); equal results, "
            f"{total:,} recipients counted"
        )
        if schema:
            roll_srv = _server_ms(
                db,
                lambda: (daily_states(ctx, tenant, since=since), failure_codes(ctx, tenant, since=since)),
                args.repeat,
            )
            scan_srv = _server_ms(
                db,
                lambda: (daily_states_scan(ctx, tenant, since=since), failure_codes_scan(ctx, tenant, since=since)),
                args.repeat,
            )
            print(
                f"server execution time (EXPLAIN ANALYZE, best of {args.repeat}): rollup {roll_srv:.1f} ms, scan "
                f"{scan_srv:.1f} ms: scan/rollup = {scan_srv / roll_srv:.0f}x"
            )
        with_ins, with_upd = _handover(db, tenant, rnd, args.sample)
        with db.begin() as conn:
            for t in ("ins", "upd", "del"):
                conn.execute(text(f"DROP TRIGGER recipient_rollup_{t}" + (" ON recipients" if schema else "")))
        bare_ins, bare_upd = _handover(db, tenant, rnd, args.sample)
        print(
            f"write cost of the triggers, {args.sample:,} recipients: insert {with_ins:.2f} s vs {bare_ins:.2f} s "
            f"without ({with_ins / bare_ins:.2f}x); hand-over UPDATE in chunks of 5,000 {with_upd:.2f} s vs "
            f"{bare_upd:.2f} s ({with_upd / bare_upd:.2f}x)"
        )
    finally:
        db.dispose()
        if schema:
            import psycopg

            with psycopg.connect(PG, autocommit=True) as c:
                c.execute(f"DROP SCHEMA {schema} CASCADE")
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
