"""Same-run A/B of the screening engine across checkouts (issue 21 point 5: do the context rules cost the engine?).

    .venv/bin/python bench/engine_versions.py CHECKOUT [CHECKOUT ...] [--rounds 3] [--limit 40000] [--model]

Each CHECKOUT is a worktree with its own ``.venv`` (``git worktree add --detach DIR REV``, copy ``.venv``,
``DIR/.venv/bin/pip install --no-deps -e DIR``). Round by round, each checkout's interpreter screens the same
zh_sms80w texts with its own engine (no model unless ``--model``; one model thread) against the same 107k shared
lexicon terms, and the naive baseline (raw pyahocorasick over those terms) in the same process; printed: thread CPU
msgs/s of both and their ratio, with the load average. Corpus, lexicon and baseline come from this checkout's
bench/engine.py, so every version is measured the same way."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

ONE_ROUND = r"""
import importlib.util, json, sys, tempfile, time
from pathlib import Path
bench = Path(sys.argv[1])
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != bench.parent]
spec = importlib.util.spec_from_file_location("bench_engine", bench)
be = importlib.util.module_from_spec(spec); sys.modules["bench_engine"] = be; spec.loader.exec_module(be)
import ahocorasick
from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig, Message
limit, with_model = int(sys.argv[2]), sys.argv[3] == "1"
texts = be.load_corpus(limit); terms, _ = be.load_terms()
with tempfile.TemporaryDirectory() as tmp:
    be.write_lexicon(Path(tmp), terms)
    model = PROJECT_ROOT / "models" / "classifier.onnx" if with_model else None
    engine = Engine(EngineConfig(policy_path=PROJECT_ROOT / "policy.yaml", lexicon_dirs=(Path(tmp),), model_path=model))
    msgs = [Message(text=t, kind="notification") for t in texts]
    engine.screen_many(msgs[:2000])
    naive = ahocorasick.Automaton()
    for i, t in enumerate(terms):
        naive.add_word(t, i)
    naive.make_automaton()
    best_engine = best_naive = float("inf")
    for _ in range(3):
        t0 = time.thread_time()
        for i in range(0, len(msgs), 512):
            engine.screen_many(msgs[i : i + 512])
        best_engine = min(best_engine, time.thread_time() - t0)
        t0 = time.thread_time()
        for t in texts:
            for _hit in naive.iter(t):
                pass
        best_naive = min(best_naive, time.thread_time() - t0)
print(json.dumps({"root": str(PROJECT_ROOT), "model": engine.versions.model, "n": len(texts),
                  "engine_msgs_s": round(len(texts) / best_engine), "naive_msgs_s": round(len(texts) / best_naive),
                  "ratio": round(best_naive / best_engine, 3)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkouts", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=40_000)
    ap.add_argument("--model", action="store_true", help="with the checkout's ONNX model (one thread)")
    args = ap.parse_args()
    env = {**os.environ, "SMSGUARD_MODEL_THREADS": "1"}
    for r in range(1, args.rounds + 1):
        for checkout in args.checkouts:
            python = checkout.resolve() / ".venv" / "bin" / "python"
            load = Path("/proc/loadavg").read_text().split()[0]
            out = subprocess.run(
                [str(python), "-c", ONE_ROUND, str(HERE / "engine.py"), str(args.limit), "1" if args.model else "0"],
                cwd=checkout, env=env, capture_output=True, text=True, timeout=1800,
            )
            if out.returncode != 0:
                sys.exit(f"{checkout}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            print(json.dumps({"round": r, "load": float(load), **json.loads(out.stdout.strip().splitlines()[-1])}))


if __name__ == "__main__":
    main()
