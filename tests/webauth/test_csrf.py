"""CSRF tokens bound to the session (issue 15: another session's, or an anonymous, (cookie, token) pair was
accepted). Two real sessions of two users, logged in through the form; each pair works only in its own session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from webauth_support import ACCOUNTS, PASSWORD, App

from smsguard.webauth.testing import form_token, log_in

CSRF_COOKIE, SESSION_COOKIE, DOMAIN = "sg_app_csrf", "sg_app", "testserver.local"


@pytest.fixture(scope="module")
def app(db, tmp_path_factory) -> App:
    for name in ("ann-csrf", "bob-csrf"):
        ACCOUNTS.create_user(db, name, PASSWORD, "member", team=2)
    return App(db, tmp_path_factory.mktemp("csrf-app"))


def _client(app: App) -> TestClient:
    c = TestClient(app.app)
    c.follow_redirects = False
    return c


@pytest.fixture
def two_sessions(app) -> Iterator[tuple[TestClient, TestClient]]:
    with _client(app) as ann, _client(app) as bob:
        assert log_in(ann, "/app", "ann-csrf", PASSWORD).status_code == 302
        assert log_in(bob, "/app", "bob-csrf", PASSWORD).status_code == 302
        assert ann.cookies.get(SESSION_COOKIE) != bob.cookies.get(SESSION_COOKIE)
        yield ann, bob


def _pair(c: TestClient) -> tuple[str, str]:
    """The (CSRF cookie, form token) a page of this client's session carries."""
    token = form_token(c.get("/app/login").text)
    assert token
    return c.cookies.get(CSRF_COOKIE), token


def _post_with(c: TestClient, pair: tuple[str, str]) -> int:
    c.cookies.set(CSRF_COOKIE, pair[0], domain=DOMAIN, path="/app")
    return c.post("/app/change", data={"_csrf_token": pair[1]}).status_code


def test_each_session_s_own_pair_works(two_sessions) -> None:
    ann, bob = two_sessions
    assert _post_with(ann, _pair(ann)) == 201
    assert _post_with(bob, _pair(bob)) == 201


def test_another_session_s_pair_is_refused(two_sessions) -> None:
    ann, bob = two_sessions
    ann_pair = _pair(ann)
    assert _post_with(bob, ann_pair) == 403
    assert bob.post("/app/change", data={"_csrf_token": ann_pair[1]}).status_code == 403  # token alone, too
    assert _post_with(ann, ann_pair) == 201  # and it is still good where it belongs


def test_an_anonymous_pair_is_refused_in_a_logged_in_session(app, two_sessions) -> None:
    _, bob = two_sessions
    with _client(app) as stranger:
        anonymous = _pair(stranger)
        assert stranger.post("/app/login", data={"username": "x", "password": "y" * 8,
                                                 "_csrf_token": anonymous[1]}).status_code == 401  # valid to log in
    assert _post_with(bob, anonymous) == 403


def test_the_token_of_the_login_page_is_void_once_logged_in(app) -> None:
    with _client(app) as c:
        before = _pair(c)
        assert c.post("/app/login", data={"username": "ann-csrf", "password": PASSWORD,
                                          "_csrf_token": before[1]}).status_code == 302
        assert c.post("/app/change", data={"_csrf_token": before[1]}).status_code == 403
        assert _post_with(c, _pair(c)) == 201


def test_a_token_sent_as_a_header_is_bound_alike(two_sessions) -> None:
    ann, bob = two_sessions
    cookie, token = _pair(ann)
    assert ann.post("/app/change", headers={"x-csrftoken": token}).status_code == 201
    bob.cookies.set(CSRF_COOKIE, cookie, domain=DOMAIN, path="/app")
    assert bob.post("/app/change", headers={"x-csrftoken": token}).status_code == 403


def test_a_forged_cookie_is_refused_and_replaced(app) -> None:
    with _client(app) as c:
        c.cookies.set(CSRF_COOKIE, "0" * 128, domain=DOMAIN, path="/app")
        page = c.get("/app/login")
        assert any(h.startswith(f"{CSRF_COOKIE}=") for h in page.headers.get_list("set-cookie"))
        assert c.cookies.get(CSRF_COOKIE) != "0" * 128
        assert log_in(c, "/app", "ann-csrf", PASSWORD).status_code == 302
