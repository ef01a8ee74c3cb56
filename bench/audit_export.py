"""Audit log benchmark: append throughput, verify speed, and export memory for N events (default 1M).

    .venv/bin/python bench/audit_export.py [--events 1000000] [--backend sqlite|postgresql]

Appends N small events with ``append_many`` in transactions of 10,000 (the API's writer batches the same
way), runs ``verify`` over all of them, then streams a JSONL and a CSV export of all of them while sampling
the process's resident memory (``/proc/self/statm``, every chunk) and reports the peak growth over the RSS
before the export. Bounded: one database in a temp dir (sqlite) or one scratch schema (postgresql), removed
at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smsguard.audit import AuditEvent, EventFilter, stream_events, verify
from smsguard.audit._chain import _append
from smsguard.storage import make_engine, migrate

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    schema = None
    if args.backend == "sqlite":
        url = f"sqlite:///{tmp.name}/bench.db"
    else:
        import psycopg

        schema = f"audit_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    db = make_engine(url)
    try:
        migrate(db)
        n, chunk = args.events, 10_000
        t0 = time.perf_counter()
        done = 0
        while done < n:
            k = min(chunk, n - done)
            batch = [AuditEvent(event_type="verdict", actor="key:sg_benchmark", tenant_id=1 + (done + i) % 7,
                                subject=f"verdict:{done + i:032x}",
                                payload={"decision": "pass", "score": 0.0123, "cached": False,
                                         "content_hash": "ab" * 32, "policy": "2026.11.25+abcdef12"})
                     for i in range(k)]
            with db.begin() as conn:
                _append(conn, batch, None)
            done += k
        append_s = time.perf_counter() - t0
        print(f"{args.backend}: appended {n:,} events in {append_s:.1f} s = {n / append_s:,.0f} events/s "
              f"(append_many, {chunk:,} per transaction)")
        report = verify(db)
        assert report.ok, report.problem
        print(f"verify: {report.checked:,} events in {report.seconds:.1f} s = {report.checked / report.seconds:,.0f}"
              " events/s")
        for fmt in ("jsonl", "csv"):
            base = rss()
            peak = base
            size = 0
            t0 = time.perf_counter()
            for i, part in enumerate(stream_events(db, EventFilter(), fmt)):
                size += len(part)
                if i % 16 == 0:
                    peak = max(peak, rss())
            secs = time.perf_counter() - t0
            print(f"export {fmt}: {size / 1e6:,.0f} MB in {secs:.1f} s; RSS before {base / 1e6:.0f} MB, "
                  f"peak growth {(peak - base) / 1e6:.1f} MB")
        print(f"max RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")
    finally:
        db.dispose()
        if schema:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
                c.execute(f"DROP SCHEMA {schema} CASCADE")
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
