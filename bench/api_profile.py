"""Where a ``POST /v1/screen`` request's time goes, from a profile (not a guess).

Run: ``.venv/bin/python bench/api_profile.py [distinct|repeated]`` (needs ``wrk`` and ``py-spy``, which
the ``dev`` extra pins). Starts ``smsguard serve`` on the embedded defaults in a temporary data dir, loads it with
wrk (bench/api_<script>.lua, 16 connections), samples every thread with py-spy for ``--seconds`` and sorts each
sample by the innermost frame that names a part of the request: decode, key check, rate limit + cache (Redis),
content hash, engine (classifier apart), audit row / SQL group commit, metrics, encode, litestar, uvicorn + event
loop. Shares are of the samples where a thread was running (py-spy leaves idle threads out).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _serve import clean_env, serve, tenant_key

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent

# innermost matching frame wins; (category, pattern on "function (file:line)")
PARTS: list[tuple[str, re.Pattern[str]]] = [
    ("engine: classifier (onnxruntime)", re.compile(r"OnnxClassifier|onnxruntime")),
    ("engine: lexicon, rules, verdict", re.compile(r"\(engine/|smsguard/engine/")),
    ("audit row + SQL group commit (writer thread)", re.compile(r"audit/_writer|audit/_chain|storage/_repo")),
    ("SQL (other)", re.compile(r"sqlalchemy|sqlite3|psycopg")),
    ("rate limit + verdict cache (Redis client)", re.compile(r"redis/|RateLimiter\.admit|_send_sets|_cache_later")),
    ("content hash", re.compile(r"content_hash")),
    ("key check", re.compile(r"authenticate|require_key")),
    ("metrics", re.compile(r"api/_metrics|prometheus_client")),
    ("encode answer", re.compile(r"_Cached\.|answer \(|msgspec.*encode|new_verdict_id")),
    ("decode body (litestar + msgspec)", re.compile(r"msgspec|parse_body|get_body|_extractors|kwargs/")),
    ("screening path, other (api/_service.py)", re.compile(r"api/_service")),
    ("litestar (routing, middleware, response)", re.compile(r"litestar/")),
    ("uvicorn + httptools + event loop", re.compile(r"uvicorn/|httptools|asyncio/|Runner\.run")),
]


def categorize(frames: list[str]) -> str:
    for frame in reversed(frames[1:]):
        for name, pattern in PARTS:
            if pattern.search(frame):
                return name
    return "other"


def summarize(raw: Path) -> list[tuple[str, str, int]]:
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        thread = "loop thread" if "MainThread" in frames[0] else re.sub(r"thread \(\d+\): ", "", frames[0])
        counts[(thread if thread == "loop thread" else "other threads", categorize(frames))] += int(n)
    return [(t, c, n) for (t, c), n in counts.most_common()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("script", nargs="?", default="distinct", choices=["distinct", "repeated"])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--port", type=int, default=8197)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = clean_env(tmp)
        env["KEY"] = tenant_key(env)
        env["RUN"] = str(os.getpid())
        with serve(env, args.port) as (base, server):
            url = f"{base}/v1/screen"
            wrk = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.seconds + 6}s", "-s",
                                    str(ROOT / "bench" / f"api_{args.script}.lua"), url], env=env,
                                   stdout=subprocess.PIPE, text=True)
            time.sleep(3)
            raw = Path(tmp) / "spy.txt"
            subprocess.run([VENV / "py-spy", "record", "-p", str(server.pid), "-d", str(args.seconds), "-r", "200",
                            "-f", "raw", "--threads", "--nonblocking", "-o", str(raw)], check=True, capture_output=True)
            wrk_out = wrk.communicate()[0]
            rows = summarize(raw)
    rps = re.search(r"Requests/sec:\s+(\S+)", wrk_out)
    print(f"# Where a {args.script} POST /v1/screen request's time goes (py-spy, {args.seconds} s at 200 Hz, "
          f"wrk -c16: {rps.group(1) if rps else '?'} req/s; load {os.getloadavg()[0]:.1f})\n")
    print("| thread | part | samples | share of its thread's busy samples |")
    print("| --- | --- | ---: | ---: |")
    per_thread = collections.Counter()
    for t, _, n in rows:
        per_thread[t] += n
    for t, c, n in sorted(rows, key=lambda r: (r[0] != "loop thread", -r[2])):
        print(f"| {t} | {c} | {n} | {n / per_thread[t]:.0%} |")
    print(f"\nloop thread busy in {per_thread['loop thread'] / (args.seconds * 200):.0%} of the samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
