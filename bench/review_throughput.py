"""Bench: a reviewer's action round trip with 10,000 items queued, over HTTP against a real ``smsguard serve``
(embedded defaults): approve (CSRF form post → decision committed → next item claimed → redirect) and the item
page it lands on. Target: p95 ≤ 100 ms for both.

    .venv/bin/python bench/review_throughput.py [--queued 10000] [--actions 150]

Baseline in the same run: ``GET /healthz`` on the same server (what any request costs on this machine right
now), so the figures read as a ratio too. Moved here from tests/review_ui (wall clock is not asserted in tests).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from _serve import clean_env, free_port, serve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = "correct horse battery"




def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queued", type=int, default=10_000)
    ap.add_argument("--actions", type=int, default=150)
    args = ap.parse_args()

    from smsguard import review
    from smsguard.core import Settings
    from smsguard.review._users import create_user
    from smsguard.runtime import Runtime
    from smsguard.storage import create_tenant

    tmp = Path(tempfile.mkdtemp(prefix="sgreview"))
    env = clean_env(tmp / "var")
    runtime = Runtime(Settings(data_dir=tmp / "var")).open()
    tenant = create_tenant(runtime.db, "bench-review")
    create_user(runtime.db, "alice", PASSWORD, "reviewer")
    verdict = {"decision": "review", "score": 0.6, "reasons": [
        {"code": "lexicon.loan", "category": "loan", "severity": "low", "source": "lexicon", "action": "review",
         "message": "sensitive term", "term": "贷款", "start": 6, "end": 8}]}
    with runtime.db.begin() as conn:
        for i in range(args.queued):
            review.submit(conn, tenant_id=tenant.id, source="bench", source_ref=uuid.uuid4().hex,
                          text=f"【测试银行】贷款{i}号，额度{i % 50}万，回T退订", verdict=verdict, priority=i % 3)
    runtime.close()
    port = free_port()
    try:
        with serve(env, port) as (url, _), httpx.Client(base_url=url, follow_redirects=False, timeout=10) as c:
            token = re.search(r'name="_csrf_token" value="([^"]+)"', c.get("/review/login").text)[1]
            c.post("/review/login", data={"username": "alice", "password": PASSWORD, "_csrf_token": token})
            q = f"tenant={tenant.name}"
            while (r := c.post(f"/review/claim?{q}", data={"_csrf_token": token})).headers["location"].startswith(
                "/review?"):  # the background loop dispatches the items in batches
                time.sleep(0.2)
            location = r.headers["location"]
            decide_ms, page_ms, health_ms = [], [], []
            for _ in range(args.actions):
                start = time.perf_counter()
                c.get("/healthz")
                health_ms.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                page = c.get(location)
                page_ms.append((time.perf_counter() - start) * 1000)
                item = int(re.search(r"/review/items/(\d+)", location)[1])
                version = re.search(r'name="version" value="(\d+)"', page.text)[1]
                start = time.perf_counter()
                r = c.post(f"/review/items/{item}/decide?{q}",
                           data={"_csrf_token": token, "action": "approve", "version": version})
                decide_ms.append((time.perf_counter() - start) * 1000)
                location = r.headers["location"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = statistics.median(health_ms)
    for name, ms in (("approve + claim next", decide_ms), ("item page", page_ms), ("GET /healthz (baseline)",
                                                                                   health_ms)):
        print(f"{name:24} p50 {statistics.median(ms):6.1f} ms  p95 {p95(ms):6.1f} ms  "
              f"({statistics.median(ms) / base:.1f}x baseline p50)")
    ok = p95(decide_ms) <= 100 and p95(page_ms) <= 100
    print(f"{args.queued} queued, {args.actions} actions; target p95 <= 100 ms: {'met' if ok else 'NOT met'}; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
