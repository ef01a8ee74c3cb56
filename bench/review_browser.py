"""An experienced reviewer's loop in a real browser, with 10k items queued: seconds per approve and per reject
with a canned reason, each including the page update (the next item's page is shown and ready for a key).

    .venv/bin/python bench/review_browser.py [--backend sqlite|postgresql] [--queued 10000] [--actions 40]

Starts its own ``smsguard serve`` (SQLite in a temporary data dir, or a scratch PostgreSQL database on
127.0.0.1 that it drops afterwards), fills the queue, logs in with Playwright on Debian's chromium, and keys
``a`` (approve) or ``r`` ↓ Enter (reject with the first canned reason) item after item. Targets (issue 20):
≤ 1.5 s per approve, ≤ 3 s per canned reject. The baseline in the same run is a plain page load of the item.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
from _serve import free_port, serve
from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking"]




def fill(database_url: str, queued: int) -> None:
    from smsguard import review
    from smsguard.review._users import create_user
    from smsguard.storage import create_tenant, make_engine, migrate

    db = make_engine(database_url)
    migrate(db)
    tenant = create_tenant(db, f"bench-{uuid.uuid4().hex[:6]}")
    create_user(db, "bench", PASSWORD, "senior")
    verdict = {"decision": "review", "score": 0.6, "reasons": [
        {"code": "lexicon.loan", "category": "loan", "severity": "low", "source": "lexicon", "action": "review",
         "message": "sensitive term", "term": "贷款", "start": 6, "end": 8}]}
    with db.begin() as conn:
        for i in range(queued):
            review.submit(conn, tenant_id=tenant.id, source="bench", source_ref=uuid.uuid4().hex,
                          text=f"【测试银行】贷款{i}号，额度{i % 50}万，回T退订", verdict=msgspec.to_builtins(verdict),
                          priority=i % 3)
    db.dispose()


def run(backend: str, queued: int, actions: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="review-bench-"))
    env = {**os.environ, "SMSGUARD_DATA_DIR": str(data)}
    scratch = None
    if backend == "postgresql":
        scratch = f"review_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{scratch}"
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        env["SMSGUARD_REDIS_NAMESPACE"] = f"bench:{scratch}"
        url = "postgresql+psycopg://postgres@127.0.0.1:5432/" + scratch
        # a deployment on PostgreSQL refuses to start without its shared secrets: generate a set for this run
        subprocess.run([sys.executable, "-m", "smsguard", "keys", "init", str(data / "secrets")], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        env["SMSGUARD_SECRETS_DIR"] = str(data / "secrets")
    else:
        url = f"sqlite:///{data / 'smsguard.db'}"
    fill(url, queued)
    port = free_port()
    try:
        with serve(env, port, log=data / "serve.log", timeout=120) as (base, _), sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{base}/review/login")
            page.fill("#username", "bench")
            page.fill("#password", PASSWORD)
            page.click("#login")
            page.wait_for_url(lambda u: "/login" not in u)
            while True:  # the background loop dispatches the 10k items in batches of 500
                page.goto(f"{base}/review")
                with page.expect_navigation():
                    page.keyboard.press("n")
                if "/review/items/" in page.url:
                    break
                time.sleep(0.3)
            loads, approves, rejects = [], [], []
            for i in range(actions):
                current = page.url
                t0 = time.perf_counter()
                page.reload()
                page.wait_for_selector("#approve")
                loads.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                if i % 2 == 0:
                    page.keyboard.press("a")
                else:
                    page.keyboard.press("r")
                    page.keyboard.press("ArrowDown")
                    page.keyboard.press("Enter")
                page.wait_for_function("url => location.href !== url", arg=current)
                page.wait_for_selector("#approve")
                (approves if i % 2 == 0 else rejects).append(time.perf_counter() - t0)
            browser.close()
    finally:
        if scratch:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{scratch}" WITH (FORCE)'))
    return {"approve_median": statistics.median(approves), "approve_p95": sorted(approves)[int(0.95 * len(approves))],
            "reject_median": statistics.median(rejects), "reject_p95": sorted(rejects)[int(0.95 * len(rejects))],
            "page_load_median": statistics.median(loads)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--queued", type=int, default=10_000)
    ap.add_argument("--actions", type=int, default=40)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    r = run(args.backend, args.queued, args.actions)
    print(f"review loop in chromium, {args.backend}, {args.queued} queued, {args.actions} actions, load {load:.1f}")
    print(f"  approve (a) incl. next page ready: median {r['approve_median']:.2f} s, p95 {r['approve_p95']:.2f} s "
          f"(target ≤ 1.5 s)")
    print(f"  canned reject (r ↓ Enter): median {r['reject_median']:.2f} s, p95 {r['reject_p95']:.2f} s "
          f"(target ≤ 3 s)")
    print(f"  baseline, same run: item page load {r['page_load_median']:.2f} s "
          f"(approve = {r['approve_median'] / r['page_load_median']:.1f}x a page load)")


if __name__ == "__main__":
    main()
