"""Event-loop lag of ``smsguard serve`` while large texts are screened (issue 15, failure 9).

Run: ``.venv/bin/python bench/loop_lag.py [--seconds 10]``. Embedded defaults in a temporary data dir. Measures
the latency of ``GET /healthz`` (which does no work: its time is the loop's) one request at a time, first with
nothing else running (the baseline of the same run), then while a client keeps screening 1.9 MB texts back to
back. A loop blocked by screening shows as the max and p99 above the baseline's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

import httpx
from _serve import clean_env, serve, tenant_key

UNIT = "【示例商城】尊敬的会员您好，您的订单已发货，单号SF1234567，请注意查收。退订回T "


def probe(client: httpx.Client, seconds: float) -> list[float]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        client.get("/healthz").raise_for_status()
        out.append((time.perf_counter() - t) * 1000)
        time.sleep(0.002)
    return out


def summary(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    return f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {max(ms):.1f} ms ({len(ms)} probes)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--port", type=int, default=8195)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = clean_env(tmp)
        key = tenant_key(env)
        with serve(env, args.port) as (base, _), httpx.Client(base_url=base, timeout=60) as client:
            idle = probe(client, args.seconds)
            stop = threading.Event()
            screened: list[float] = []

            def screen_big() -> None:
                n = 0
                with httpx.Client(base_url=base, timeout=120) as c:
                    while not stop.is_set():
                        n += 1  # a distinct text each time: never a cache hit
                        text = f"{n}" + UNIT * (1_900_000 // len(UNIT.encode()))
                        t = time.perf_counter()
                        c.post("/v1/screen", json={"text": text},
                               headers={"Authorization": f"Bearer {key}"}).raise_for_status()
                        screened.append(time.perf_counter() - t)

            worker = threading.Thread(target=screen_big)
            worker.start()
            time.sleep(0.5)
            busy = probe(client, args.seconds)
            stop.set()
            worker.join()
    print(f"# /healthz latency (the loop's lag), load average {os.getloadavg()[0]:.1f}\n")
    print(f"- idle (baseline, same run): {summary(idle)}")
    print(f"- while 1.9 MB texts are screened back to back ({len(screened)} screened, "
          f"{statistics.median(screened):.2f} s each): {summary(busy)}")
    p99 = statistics.quantiles(busy, n=100)[98] - statistics.quantiles(idle, n=100)[98]
    print(f"- lag added by screening: p99 +{p99:.1f} ms, max +{max(busy) - max(idle):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
