"""Login, logout, sessions and CSRF on a small litestar app of the tests' own, rendered with webauth's form
macros and driven with webauth.testing: what the reviewer UI and the console both rely on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from webauth_support import ACCOUNTS, PASSWORD, App, TeamUser, sessions

from smsguard.audit._tables import events
from smsguard.webauth import LOGIN_FAILED
from smsguard.webauth.testing import form_token, log_in


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
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text  # zh-CN unless asked otherwise
    assert LOGIN_FAILED == "wrong user name or password"
    english = log_in(client, "/app", "nobody-at-all", PASSWORD, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert LOGIN_FAILED in english.text
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


def test_an_anonymous_visit_writes_no_session_row(db, client) -> None:
    with db.begin() as conn:
        conn.execute(sessions.delete())
    for _ in range(3):
        assert client.get("/app/login").status_code == 200
    with db.connect() as conn:
        assert conn.execute(select(sessions.c.key)).all() == []  # a flood of page views is no flood of SQL writes
