"""Fixtures of the webauth tests (a module named conftest is ambiguous when the whole suite runs): a migrated
database (audit events need their tables) with an accounts table of the tests' own, so the shared code is
exercised on a table neither UI uses, with an extra column as the console's ``tenant_id``.

The database tests run on both backends: ``db`` is a new database per module on the session ``backend`` fixture
of tests/conftest.py (``scratch_database_url``: a SQLite file, or a PostgreSQL schema dropped with the session), so
fixed names (member-web) and clearing the whole session table stay within the module."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, Request, Response, Router, get, post
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.utils.scope.state import ScopeState
from sqlalchemy import Column, Engine, Integer, MetaData

from smsguard import i18n, webauth
from smsguard.core import SmsguardError
from smsguard.review._tables import review_sessions, review_users
from smsguard.webauth import Accounts, AccountsConfig, WebAuth, WebAuthConfig
from smsguard.webauth._throttle import ThrottlePolicy

PASSWORD = "correct horse battery"

# Copies of the reviewer tables under names of their own (the columns webauth needs), plus a column of the
# test's own: what create_user(**columns) fills, as the console's tenant_id.
metadata = MetaData()
team_users = review_users.to_metadata(metadata, name="webauth_test_users")
team_users.append_column(Column("team", Integer, nullable=False))
sessions = review_sessions.to_metadata(metadata, name="webauth_test_sessions")

TeamUser = namedtuple("TeamUser", "id username role team")  # what Account asks of a user object, and the team


class TeamUserError(SmsguardError):
    code = "team.user"


ACCOUNTS = Accounts(AccountsConfig(table=team_users, roles=("member", "lead"), error=TeamUserError,
                                   user=lambda row: TeamUser(row.id, row.username, row.role, row.team),
                                   exists_code="team.exists", not_found_code="team.not_found"))


LOGIN_PAGE = """{% from "webauth/forms.html" import login_form, logout_form %}
{{ login_form("/app/login", "Test log-in", next, error, csrf_token) }}"""


class App:
    """A litestar app of the tests' own under ``/app``: the webauth handlers, a home page and a form target."""

    def __init__(self, db, root: Path, throttle: ThrottlePolicy | None = None) -> None:
        (root / "templates").mkdir()
        (root / "templates" / "login.html").write_text(LOGIN_PAGE)
        self.templates = JinjaTemplateEngine(directory=[root / "templates", webauth.TEMPLATES])
        i18n.install(self.templates.engine)  # the forms' labels are catalogue messages, as in both UIs
        self.auth: WebAuth[TeamUser] = WebAuth(WebAuthConfig(
            path="/app", accounts=ACCOUNTS, session_table=sessions, session_prefix="app:", store="app_sessions",
            session_cookie="sg_app", csrf_cookie="sg_app_csrf", session_key="tuid",
            session_extra=lambda user: {"realm": "app"}, via="test", actor_prefix="team:", subject_prefix="member:",
            audit_tenant=lambda user: None, **({} if throttle is None else {"throttle": throttle}),
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
                        middleware=[i18n.language_middleware, *auth.middleware(webauth.load_secret(root / "data"))])
        self.app = Litestar(route_handlers=[router], on_startup=[auth.register_store])

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        ctx["csrf_token"] = ScopeState.from_scope(request.scope).csrf_token
        return Response(self.templates.get_template(name).render(**ctx), status_code=status,
                        media_type="text/html; charset=utf-8")


@pytest.fixture(scope="module")
def db(backend) -> Iterator[Engine]:
    from smsguard.storage import make_engine, migrate

    engine = make_engine(backend.settings(database_url=backend.scratch_database_url()).sqlalchemy_url)
    migrate(engine)
    metadata.create_all(engine)
    yield engine
    engine.dispose()
