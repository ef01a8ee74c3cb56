"""Shadow-mode replay speed: ``smsguard policy diff`` over a million stored verdicts.

Run: ``.venv/bin/python bench/policy_diff.py [--n 1000000] [--model none|default]``. One process, one thread.

1. Texts: the 80w Chinese SMS corpus (``../shared/data``, ~97k lines) cycled to ``--n``, each made distinct
   with a suffix (an order number), so no stored request repeats: the replay cannot win by de-duplicating.
2. Baseline, measured in this run: plain ``Engine.screen_many`` over the same texts in batches of 2048
   (the engine in force), once before and once after (3), as wall time and as this process's CPU time (the
   cores are shared: the CPU-time ratio is the one other processes' load moves least). Its verdicts are then
   stored as the API stores them (answer JSON, content hash, versions) in a fresh SQLite database, spread over
   the last 7 days (not timed).
3. ``audit.shadow_diff`` with a candidate that adds a few lexicon terms: read every row from SQL, rebuild its
   request, screen it with the candidate, compare, group. Reported as verdicts/s and as ratios to (2).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from smsguard.api._service import new_verdict_id
from smsguard.audit import shadow_diff
from smsguard.engine import PROJECT_ROOT, Engine, Message, content_hash, default_config
from smsguard.storage import create_tenant, make_engine, migrate
from smsguard.storage._models import VerdictRecord

DATA = PROJECT_ROOT.parent / "shared" / "data"
if not DATA.is_dir():  # a git worktree sits one level deeper than the main checkout
    DATA = PROJECT_ROOT.parent.parent / "shared" / "data"
CORPUS = DATA / "zh_sms80w" / "zh_sms80w_dedup_train.tsv"
BATCH = 2048
# the candidate: three common words made high-severity terms, so a share of the decisions flips
CANDIDATE_TERMS = "优惠\tfraud\thigh\tsubstring\n免费\tfraud\thigh\tsubstring\n八折\tgambling\thigh\tsubstring\n"
_encode = msgspec.json.Encoder().encode


def texts(n: int) -> list[str]:
    with CORPUS.open(encoding="utf-8") as f:
        base = [line.split("\t", 1)[1].strip() for line in f if "\t" in line]
    base = [t for t in base if t]
    return [f"{base[i % len(base)]}（单号{i}）" for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="stored verdicts")
    ap.add_argument(
        "--model",
        choices=("none", "default"),
        default="none",
        help="classifier in both engines (none: lexicon + rules, ~1.7x faster per text)",
    )
    args = ap.parse_args()
    config = default_config()
    if args.model == "none":
        config = dataclasses.replace(config, model_path=None)
    engine = Engine(config)
    corpus = texts(args.n)
    tenant = "bench"
    messages = [Message(text=t, tenant=tenant) for t in corpus]

    t0, c0 = time.perf_counter(), time.process_time()
    verdicts = []
    for i in range(0, len(messages), BATCH):
        verdicts += engine.screen_many(messages[i : i + BATCH])
    baseline_s, baseline_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"baseline  Engine.screen_many: {args.n:,} texts in {baseline_s:.1f} s = {args.n / baseline_s:,.0f}/s "
        f"(CPU {baseline_cpu:.1f} s = {args.n / baseline_cpu:,.0f}/s)",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="smsguard-bench-diff-") as tmp:
        db = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(db)
        tid = create_tenant(db, tenant).id
        v = engine.versions
        now = datetime.now(UTC)
        t1 = time.perf_counter()
        table = VerdictRecord.__table__
        for i in range(0, len(messages), 10_000):
            rows = []
            for j in range(i, min(i + 10_000, len(messages))):
                m, verdict = messages[j], verdicts[j]
                vid = new_verdict_id()
                body = _encode(verdict)
                answer = (
                    b'{"id":null,'
                    + body[len(b'{"id":null,') : -1]
                    + b',"verdict_id":"'
                    + vid.encode()
                    + b'","cached":false}'
                )
                created = now - timedelta(seconds=(len(messages) - j // BATCH * BATCH) * 0.6)
                rows.append(
                    {
                        "id": vid,
                        "tenant_id": tid,
                        "created_at": created,
                        "message_id": None,
                        "content_hash": content_hash(v, tenant, m, False),
                        "decision": verdict.decision,
                        "score": verdict.score,
                        "policy_version": v.policy,
                        "lexicon_version": v.lexicon,
                        "model_version": v.model,
                        "cached": False,
                        "text": m.text,
                        "verdict": answer.decode(),
                    }
                )
            with db.begin() as conn:
                conn.execute(table.insert(), rows)
        del verdicts
        print(f"stored {args.n:,} verdicts in SQLite in {time.perf_counter() - t1:.0f} s (not timed)", flush=True)

        extra = Path(tmp) / "candidate-lexicon"
        extra.mkdir()
        (extra / "candidate.tsv").write_text(CANDIDATE_TERMS, "utf-8")
        candidate = Engine(dataclasses.replace(config, lexicon_dirs=(*config.lexicon_dirs, extra)))
        c1 = time.process_time()
        report = shadow_diff(db, candidate, since=now - timedelta(days=8), keep=1000)
        diff_cpu = time.process_time() - c1
        db.dispose()
        # the baseline again, after: on shared cores the load moves between the two, and this shows by how much
        t2, c2 = time.perf_counter(), time.process_time()
        for i in range(0, len(messages), BATCH):
            engine.screen_many(messages[i : i + BATCH])
        after_s, after_cpu = time.perf_counter() - t2, time.process_time() - c2
    rate = report.replayed / report.seconds
    print(
        f"policy diff (shadow_diff): {report.replayed:,} stored verdicts in {report.seconds:.1f} s = {rate:,.0f}/s "
        f"(CPU {diff_cpu:.1f} s = {report.replayed / diff_cpu:,.0f}/s); "
        f"{report.changed:,} decisions would change ({report.flip_rate:.2%})"
    )
    print(f"baseline again, after: {after_s:.1f} s = {args.n / after_s:,.0f}/s (CPU {after_cpu:.1f} s)")
    mean_s, mean_cpu = (baseline_s + after_s) / 2, (baseline_cpu + after_cpu) / 2
    print(
        f"ratio policy diff / plain screening: wall {mean_s / report.seconds:.2f} (against the mean of both "
        f"baselines; {baseline_s / report.seconds:.2f} and {after_s / report.seconds:.2f} against each), "
        f"CPU {mean_cpu / diff_cpu:.2f}"
    )
    print(
        f"model: {args.model}; python {platform.python_version()}, {platform.machine()}, "
        f"one process, one thread; batch {BATCH}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
