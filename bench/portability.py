"""Bench: number portability (携号转网) import and look-up.

    .venv/bin/python bench/portability.py --n 1000000 --backend embedded     # SQLite file
    .venv/bin/python bench/portability.py --n 1000000 --backend postgresql   # PostgreSQL on this machine

Import: a generated ``number,carrier`` CSV of ``--n`` distinct mainland numbers streamed through
``Portability.import_file`` (parse + keyed hash + batched upsert). Baseline in the same run: the same file
parsed and hashed only (the CPU floor of the import), so ``import / baseline`` is the cost of SQL.
Look-ups: ``parse_phone`` alone (baseline), ``resolve`` on a cached number, on an uncached one (one
primary-key read), and ``carriers_of_hashes`` per number in batches of 1,000. The schema is private to
the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CARRIERS = ("mobile", "unicom", "telecom", "broadnet")


def write_csv(path: Path, n: int) -> list[str]:
    rnd = random.Random(18)
    numbers = [f"1{p}{i:08d}" for p, i in zip(rnd.choices(("38", "50", "58", "86", "89", "33"), k=n),
                                                rnd.sample(range(100_000_000), n), strict=True)]
    with path.open("w") as f:
        f.write("number,carrier\n")
        f.writelines(f"{num},{rnd.choice(CARRIERS)}\n" for num in numbers)
    return numbers


def per_call_us(fn, items: list) -> float:
    started = time.perf_counter()
    for x in items:
        fn(x)
    return (time.perf_counter() - started) / len(items) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=("embedded", "postgresql"), default="embedded")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--lookups", type=int, default=5_000, help="numbers looked up per measurement")
    args = ap.parse_args()

    import psycopg

    from smsguard.phones import PhoneVault, Portability, parse_phone
    from smsguard.storage import make_engine, migrate

    tmp = Path(tempfile.mkdtemp(prefix="sgport"))
    schema = f"sgport_{uuid.uuid4().hex[:8]}"
    if args.backend == "postgresql":
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = args.pg.replace("postgresql://", "postgresql+psycopg://") + f"?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp / 'port.db'}"
    db = make_engine(url)
    try:
        migrate(db)
        vault = PhoneVault(b"b" * 32, b"bench hash key")
        path = tmp / "ported.csv"
        numbers = write_csv(path, args.n)

        started = time.perf_counter()  # baseline: parse + hash every line, no SQL
        with path.open("rb") as f:
            next(f)
            for raw in f:
                num, _ = raw.decode().split(",")
                vault.hash(parse_phone(num).e164)
        baseline = time.perf_counter() - started

        port = Portability(db, vault, ttl=3600.0)  # the cached pass must not outlive the misses' TTL
        with path.open("rb") as f:
            result = port.import_file(f, batch=args.batch)
        assert result.rejected == 0 and result.imported == args.n, result

        sample = random.Random(1).sample(numbers, args.lookups)
        phones = [parse_phone(n) for n in sample]
        parse_us = per_call_us(parse_phone, sample)
        port.clear_cache()
        miss_us = per_call_us(port.resolve, phones)  # every one a primary-key read
        hit_us = per_call_us(port.resolve, phones)  # now cached
        hashes = [vault.hash(p.e164) for p in phones]
        started = time.perf_counter()
        for i in range(0, len(hashes), 1000):
            port.carriers_of_hashes(hashes[i : i + 1000])
        batched_us = (time.perf_counter() - started) / len(hashes) * 1e6
        out = {
            "backend": args.backend,
            "rows": args.n,
            "import_s": round(result.seconds, 1),
            "import_rows_per_s": round(result.rows_per_second),
            "baseline_parse_hash_rows_per_s": round(args.n / baseline),
            "import_vs_baseline": round(result.seconds / baseline, 2),
            "parse_phone_us": round(parse_us, 2),
            "resolve_cached_us": round(hit_us, 2),
            "resolve_uncached_us": round(miss_us, 1),
            "batched_lookup_us_per_number": round(batched_us, 2),
        }
        print(json.dumps(out, indent=2))
    finally:
        db.dispose()
        if args.backend == "postgresql":
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
