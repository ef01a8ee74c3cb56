"""A decision pending release survives a killed ``smsguard serve`` (issue 20): the deadline is the item's
``release_at`` in SQL, so the process started after the kill releases it by itself (label, handler, webhook),
with no manual step. Both backends, a database of its own, policy.yaml with ``review.undo_seconds: 8``."""

from __future__ import annotations

import re
import time
import uuid

import httpx
from serve_support import free_port, start, stop, wait_ready
from sqlalchemy import select

from smsguard.engine import PROJECT_ROOT

PASSWORD = "correct horse battery"


def test_a_killed_process_leaves_the_decision_pending_and_the_next_one_releases_it(backend, tmp_path) -> None:
    from smsguard import review
    from smsguard.review._tables import review_items, review_labels
    from smsguard.review._users import create_user
    from smsguard.storage import create_tenant, make_engine, migrate

    policy = (PROJECT_ROOT / "policy.yaml").read_text(encoding="utf-8")
    assert "  undo_seconds: 10\n" in policy
    (tmp_path / "policy.yaml").write_text(policy.replace("  undo_seconds: 10\n", "  undo_seconds: 8\n"),
                                          encoding="utf-8")
    database_url = backend.scratch_database_url()
    db = make_engine(backend.settings(database_url=database_url).sqlalchemy_url)
    migrate(db)
    tenant = create_tenant(db, "kill-test")
    create_user(db, "kim", PASSWORD, "reviewer")
    text = "【测试】低息贷款，进程被杀测试"
    verdict = {"decision": "review", "score": 0.7, "reasons": [
        {"code": "lexicon.loan", "category": "loan", "severity": "low", "source": "lexicon", "action": "review",
         "message": "sensitive term", "term": "贷款", "start": text.index("贷款"), "end": text.index("贷款") + 2}]}
    with db.begin() as conn:
        item = review.submit(conn, tenant_id=tenant.id, source="ui-test", source_ref=uuid.uuid4().hex, text=text,
                             verdict=verdict)

    def row():
        with db.connect() as conn:
            r = conn.execute(select(review_items.c.status, review_items.c.release_at)
                             .where(review_items.c.id == item)).one()
            labelled = conn.execute(select(review_labels.c.item_id)
                                    .where(review_labels.c.item_id == item)).first() is not None
        return r.status, r.release_at, labelled

    env = backend.env(DATABASE_URL=database_url, SMSGUARD_POLICY=str(tmp_path / "policy.yaml"),
                      SMSGUARD_REDIS_NAMESPACE=f"{backend.namespace}:kill-{uuid.uuid4().hex[:8]}",
                      SMSGUARD_DATA_DIR=str(tmp_path))
    port = free_port()
    first = start(["serve", "--port", str(port)], env, tmp_path / "first.log")
    try:
        wait_ready(port, first, tmp_path / "first.log", timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            token = re.search(r'name="_csrf_token" value="([^"]+)"', c.get("/review/login").text)[1]
            c.post("/review/login", data={"username": "kim", "password": PASSWORD, "_csrf_token": token})
            html = c.get(f"/review/items/{item}").text
            assert "由你领取" in html  # "claimed by you": zh-CN, the default
            token = re.search(r'name="_csrf_token" value="([^"]+)"', html)[1]
            r = c.post(f"/review/items/{item}/decide", data={"_csrf_token": token, "version": "1",
                                                            "action": "approve"})
            assert r.status_code in (302, 303)
        first.kill()  # SIGKILL: no shutdown hook runs
        first.wait()
    finally:
        if first.poll() is None:
            stop(first)
    status, release_at, labelled = row()
    assert status == "approved" and release_at is not None and not labelled  # pending when it died

    second = start(["serve", "--port", str(port)], env, tmp_path / "second.log")
    try:
        wait_ready(port, second, tmp_path / "second.log", timeout=60)
        deadline = time.monotonic() + 30
        while row()[1] is not None:
            assert time.monotonic() < deadline, (tmp_path / "second.log").read_text(errors="replace")
            time.sleep(0.3)
    finally:
        stop(second)
        db.dispose()
    assert row() == ("approved", None, True)
