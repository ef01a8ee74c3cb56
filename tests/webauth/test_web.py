"""Login, logout, sessions and CSRF on a small litestar app of the tests' own, rendered with webauth's form
macros and driven with webauth.testing: what the reviewer UI and the console both rely on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, Request, Response, Router, get, post
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.testing import TestClient
from litestar.utils.scope.state import ScopeState
from sqlalchemy import select
from webauth_support import ACCOUNTS, PASSWORD, TeamUser, sessions

import webauth
from audit._tables import events
from webauth import LOGIN_FAILED, WebAuth, WebAuthConfig
from webauth.testing import form_token, log_in

LOGIN_PAGE = """{% from "webauth/forms.html" import login_form, logout_form %}
{{ login_form("/app/login", "Test log-in", next, error, csrf_token) }}"""


class App:
    def __init__(self, db, root: Path) -> None:
        (root / "templates").mkdir()
        (root / "templates" / "login.html").write_text(LOGIN_PAGE)
        self.templates = JinjaTemplateEngine(directory=[root / "templates", webauth.TEMPLATES])
        self.auth: WebAuth[TeamUser] = WebAuth(WebAuthConfig(
            path="/app", accounts=ACCOUNTS, session_table=sessions, session_prefix="app:", store="app_sessions",
            session_cookie="sg_app", csrf_cookie="sg_app_csrf", session_key="tuid",
            session_extra=lambda user: {"realm": "app"}, via="test", actor_prefix="team:", subject_prefix="member:",
            audit_tenant=lambda user: None,
        ), db=lambda: db, render=self.render)
        auth = self.auth

        @get("/", include_in_schema=False)
        async def home(request: Request) -> Response:
            user = await auth.current_user(request)
            if user is None:
                return Redirect("/app/login")
            return Response(f"hello {user.username}", media_type="text/plain")

        @post("/change", include_in_schema=False)
        async def change(request: Request) -> Response:
            return Response("changed", media_type="text/plain")

        router = Router(path="/app", route_handlers=[*auth.route_handlers(), home, change],
                        middleware=auth.middleware(root / "data"))
        self.app = Litestar(route_handlers=[router], on_startup=[auth.register_store])

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        ctx["csrf_token"] = ScopeState.from_scope(request.scope).csrf_token
        return Response(self.templates.get_template(name).render(**ctx), status_code=status,
                        media_type="text/html; charset=utf-8")


@pytest.fixture(scope="module")
def app(db, tmp_path_factory) -> App:
    return App(db, tmp_path_factory.mktemp("webauth-app"))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app.app) as c:
        c.follow_redirects = False
        yield c


@pytest.fixture(scope="module")
def member(db) -> TeamUser:
    uid = ACCOUNTS.create_user(db, "member-web", PASSWORD, "member", team=4)
    return TeamUser(uid, "member-web", "member", 4)


def _events(db, event_type: str) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(select(events).where(events.c.event_type == event_type).order_by(events.c.id)).all()


def test_the_login_page_carries_the_form_and_a_csrf_token(client) -> None:
    r = client.get("/app/login", params={"next": "/app/x"})
    assert r.status_code == 200
    assert form_token(r.text)
    for needle in ('action="/app/login"', 'id="username"', 'id="password"', 'id="login"', 'value="/app/x"'):
        assert needle in r.text


def test_login_without_a_csrf_token_is_refused(client, member) -> None:
    client.get("/app/login")
    r = client.post("/app/login", data={"username": member.username, "password": PASSWORD})
    assert r.status_code == 403
    assert client.get("/app/").status_code in (302, 303)


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(client, member) -> None:
    wrong = log_in(client, "/app", member.username, PASSWORD + "!")
    unknown = log_in(client, "/app", "nobody-at-all", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert LOGIN_FAILED in wrong.text and LOGIN_FAILED in unknown.text
    assert LOGIN_FAILED == "wrong user name or password"
    assert client.get("/app/").status_code in (302, 303)


def test_login_starts_a_session_and_logout_ends_it(db, client, member) -> None:
    r = log_in(client, "/app", member.username, PASSWORD, next="/app/")
    assert (r.status_code, r.headers["location"]) == (302, "/app/")
    assert client.get("/app/").text == f"hello {member.username}"
    # what the session holds: only the user id under this UI's key, and the extra fields
    with db.connect() as conn:
        data = conn.execute(select(sessions.c.data).where(sessions.c.key == f"app:{client.cookies.get('sg_app')}")
                            ).scalar_one()
    assert json.loads(data) == {"tuid": member.id, "realm": "app"}
    login = [e for e in _events(db, "login") if e.subject == f"member:{member.id}"][-1]
    assert login.actor == f"team:{member.username}" and login.tenant_id is None
    assert json.loads(login.payload) == {"role": "member", "via": "test"}

    token = form_token(client.get("/app/login").text)
    assert client.post("/app/change", data={}).status_code == 403  # every change needs the token
    assert client.post("/app/change", data={"_csrf_token": token}).status_code == 201
    r = client.post("/app/logout", data={"_csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (302, "/app/login")
    assert client.get("/app/").status_code in (302, 303)
    assert [e for e in _events(db, "login.logout") if e.subject == f"member:{member.id}"]


def test_login_never_keeps_a_session_id_the_browser_brought(db, client, member) -> None:
    planted = "a" * 64  # an id an attacker set in the victim's browser before they log in
    client.cookies.set("sg_app", planted, domain="testserver.local", path="/app")
    r = log_in(client, "/app", member.username, PASSWORD, next="/app/")
    assert r.status_code == 302
    set_cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("sg_app=")]
    fresh = set_cookie[0].split(";", 1)[0].split("=", 1)[1]
    assert fresh not in (planted, "null")
    assert client.get("/app/").text == f"hello {member.username}"
    with db.connect() as conn:
        keys = set(conn.execute(select(sessions.c.key)).scalars())
    assert f"app:{fresh}" in keys and f"app:{planted}" not in keys
    # the planted id names no user: the attacker's browser holding it is still anonymous
    with TestClient(client.app) as attacker:
        attacker.follow_redirects = False
        attacker.cookies.set("sg_app", planted, domain="testserver.local", path="/app")
        assert attacker.get("/app/").status_code in (302, 303)


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/other", ""])
def test_next_never_leaves_the_ui(client, member, target) -> None:
    r = log_in(client, "/app", member.username, PASSWORD, next=target)
    assert (r.status_code, r.headers["location"]) == (302, "/app")


def test_a_disabled_account_loses_its_session(db, client) -> None:
    ACCOUNTS.create_user(db, "leaving-web", PASSWORD, "member", team=4)
    assert log_in(client, "/app", "leaving-web", PASSWORD).status_code == 302
    assert client.get("/app/").status_code == 200
    ACCOUNTS.disable_user(db, "leaving-web")
    assert client.get("/app/").status_code in (302, 303)
