"""Log-in for a server-rendered litestar router: the login page, login and logout handlers, the current user,
server-side sessions in SQL and litestar's CSRF middleware.

The router that mounts them stays the UI's own (its pages, its error handling, where an anonymous request is
sent); this module gives it three route handlers, two middlewares and ``current_user``. Every state-changing
form carries a CSRF token, the login form included (no login CSRF); the JSON API elsewhere keeps API-key auth
and stays CSRF-exempt because the middleware sits on the UI's router only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.config.csrf import CSRFConfig
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect
from sqlalchemy import Engine, Table

from smsguard import audit
from smsguard.core import UnauthenticatedError
from smsguard.i18n import N_, gettext

from ._accounts import Account, Accounts
from ._csrf import SessionCsrfMiddleware
from ._passwords import POOL, HashingBusy
from ._sessions import SqlSessionStore
from ._throttle import LoginThrottle, Refusal, ThrottlePolicy

A = TypeVar("A", bound=Account)

TEMPLATES = Path(__file__).resolve().parent / "templates"
"""Add to the UI's template directories: ``{% from "webauth/forms.html" import login_form, logout_form %}``
renders the forms the handlers here read."""

# message ids (English), shown in the request's language
LOGIN_FAILED = N_("wrong user name or password")  # one message for both: it must not tell which one was wrong
LOGIN_WAIT = N_("too many failed log-ins: try again in %(seconds)s s")
LOGIN_LOCKED = N_("log-in locked after too many failed tries: an administrator can unlock it")
LOGIN_BUSY = N_("too many log-ins at once: try again in a moment")
_SCOPE_USER = "webauth_user"
_SCOPE_NEW_ID = "webauth_new_session_id"


class LoginRequired(UnauthenticatedError):
    """Raised by ``WebAuth.require`` when nobody is logged in; each UI's router answers it once, with its log-in
    redirect (``next``: where to come back to, default this page) or, for its scripts, 401 with ``json``."""

    def __init__(self, *, json: dict[str, Any] | None = None, next: str | None = None) -> None:
        super().__init__("log in first", code="login.required")
        self.json = json
        self.next = next


class _RotatingSessionBackend(ServerSideSessionBackend):
    """Litestar keeps the session id the request's cookie carries. At login that would let a cookie planted in the
    victim's browser become their logged-in session (session fixation), so a login gets a fresh id."""

    def get_session_id(self, connection: Any) -> str:
        if connection.scope.get(_SCOPE_NEW_ID) is True:
            connection.scope[_SCOPE_NEW_ID] = self.generate_session_id()
        return connection.scope.get(_SCOPE_NEW_ID) or super().get_session_id(connection)


@dataclass
class _RotatingSessionConfig(ServerSideSessionConfig):
    _backend_class = _RotatingSessionBackend


def _no_tenant(user: Any) -> int | None:
    return None


def _nothing(user: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class WebAuthConfig(Generic[A]):
    """One UI's log-in: where it lives, its cookies and session keys, and how its users appear in the audit log."""

    path: str
    """The UI's router path (``/review``): the login page is ``{path}/login``, both cookies are scoped to the
    path, and a ``next`` after login must stay under it (no open redirects)."""
    accounts: Accounts[A]
    session_table: Table
    """Where sessions are stored (see ``SqlSessionStore``)."""
    store: str
    """The name the session store is registered under in ``app.stores``."""
    session_cookie: str
    csrf_cookie: str
    session_key: str
    """The session field that holds the user's id. UIs sharing a session table use different keys, so even a
    session of one UI read by another names no user."""
    via: str
    """``payload.via`` of the ``login`` and ``login.logout`` audit events."""
    actor_prefix: str
    """The audit actor is this followed by the user name (``user:alice``)."""
    subject_prefix: str
    """The audit subject is this followed by the user id (``user:7``)."""
    session_prefix: str = ""
    """Prefix of this UI's keys in ``session_table``."""
    session_extra: Callable[[A], dict[str, Any]] = _nothing
    """More fields stored in the session at login, next to ``session_key``."""
    audit_tenant: Callable[[A], int | None] = _no_tenant
    """The tenant of the audit events (None: service-wide, as a reviewer's)."""
    max_age: int = 12 * 3600
    """Seconds a session lives."""
    on_logout: Callable[[A], None] | None = None
    """Run (in a worker thread) when the user logs out, e.g. to give back what they held."""
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    """Failed log-ins per account and per client address: delays, then a lock (see ``_throttle``)."""

    @property
    def realm(self) -> str:
        """The throttle's name for this UI (``review`` for ``/review``), as ``smsguard … unlock`` uses it."""
        return self.path.strip("/").replace("/", ".")


class WebAuth(Generic[A]):
    """The log-in machinery of one UI's router. ``db`` returns the engine (it exists once the app started);
    ``render(request, "login.html", status=…, next=…, error=…)`` draws the UI's own login page."""

    def __init__(self, config: WebAuthConfig[A], *, db: Callable[[], Engine], render: Callable[..., Response]) -> None:
        self.config = config
        self.db = db
        self.render = render
        self.throttle = LoginThrottle(config.realm, config.throttle)
        self._checking: set[str] = set()  # throttled keys whose one allowed try is being checked (event loop only)

    def register_store(self, app: Any) -> None:
        """Call at app start (the engine exists by then)."""
        c = self.config
        app.stores.register(c.store, SqlSessionStore(self.db(), c.session_table, prefix=c.session_prefix),
                            allow_override=True)

    async def current_user(self, request: Request) -> A | None:
        """The logged-in user of this request (None: anonymous, or the account was disabled since)."""
        uid = request.session.get(self.config.session_key) if request.scope.get("session") is not None else None
        if not uid:
            return None
        user = await anyio.to_thread.run_sync(self.config.accounts.get_user, self.db(), int(uid))
        request.scope[_SCOPE_USER] = user  # type: ignore[typeddict-unknown-key]
        return user

    async def require(self, request: Request, *, json: dict[str, Any] | None = None, next: str | None = None) -> A:
        """The logged-in user of this request, else ``LoginRequired(json=json, next=next)``."""
        user = await self.current_user(request)
        if user is None:
            raise LoginRequired(json=json, next=next)
        return user

    @staticmethod
    def user(request: Request) -> Any:
        """What ``current_user`` found for this request, for the page templates (None before it ran)."""
        return request.scope.get(_SCOPE_USER)

    def middleware(self, secret: str) -> list[Any]:
        """Sessions, then CSRF (it reads the session; ``secret`` signs its tokens), both on the UI's path only."""
        c = self.config
        session = _RotatingSessionConfig(store=c.store, key=c.session_cookie, max_age=c.max_age, path=c.path,
                                          httponly=True, samesite="lax")
        csrf = CSRFConfig(secret=secret, cookie_name=c.csrf_cookie, cookie_path=c.path,
                          cookie_samesite="strict", cookie_httponly=True)  # pages carry the token; no script reads it
        bound_csrf = DefineMiddleware(SessionCsrfMiddleware, config=csrf, session_cookie=c.session_cookie,
                                      session_key=c.session_key)
        return [session.middleware, bound_csrf]

    def route_handlers(self) -> list[HTTPRouteHandler]:
        """``GET /login``, ``POST /login`` and ``POST /logout``, relative to the UI's router."""
        auth, c = self, self.config

        @get("/login", include_in_schema=False)
        async def login_page(request: Request, next: FromQuery[str] = c.path) -> Response:
            return auth.render(request, "login.html", next=next, error=None)

        @post("/login", include_in_schema=False)
        async def login(
            request: Request, data: URLEncodedBody[dict[str, str]]
        ) -> Response:
            username = (data.get("username") or "").strip()
            address = request.client.host if request.client else "unknown"
            nxt = data.get("next") or c.path
            if not nxt.startswith(c.path) or nxt.startswith("//"):  # no open redirects
                nxt = c.path
            refused, hot = await anyio.to_thread.run_sync(auth.throttle.admit, auth.db(), username, address)
            if refused is None and auth._checking.intersection(hot):
                refused = Refusal("wait", 1)  # a throttled key's try is being checked already
            if refused is not None:  # answered before any password hashing: a flood costs a SELECT per try
                return auth._refuse(request, nxt, refused)
            auth._checking.update(hot)
            try:
                user = await POOL.run(c.accounts.authenticate, auth.db(), username, data.get("password") or "")
            except HashingBusy:
                return auth._refuse(request, nxt, Refusal("busy", 1))
            finally:
                auth._checking.difference_update(hot)
            if user is None:
                await anyio.to_thread.run_sync(lambda: auth.throttle.failed(
                    auth.db(), username, address, actor=f"address:{address}", via=c.via))
                return auth.render(request, "login.html", status=401, next=nxt, error=gettext(LOGIN_FAILED))
            await anyio.to_thread.run_sync(auth.throttle.succeeded, auth.db(), username)
            await auth._record(user, "login", {"role": user.role, "via": c.via})
            # drop whatever the session held before login, under a new id (see _RotatingSessionBackend)
            old = request.cookies.get(c.session_cookie)
            if old and old != "null":
                await request.app.stores.get(c.store).delete(old)
            request.scope[_SCOPE_NEW_ID] = True  # type: ignore[typeddict-unknown-key]
            request.clear_session()
            request.set_session({c.session_key: user.id, **c.session_extra(user)})
            return Redirect(nxt)

        @post("/logout", include_in_schema=False)
        async def logout(request: Request) -> Response:
            user = await auth.current_user(request)
            if user is not None:
                await auth._record(user, "login.logout", {"via": c.via})
                if c.on_logout is not None:
                    await anyio.to_thread.run_sync(c.on_logout, user)
            request.clear_session()
            return Redirect(f"{c.path}/login")

        return [login_page, login, logout]

    def _refuse(self, request: Request, nxt: str, refused: Refusal) -> Response:
        """429 with Retry-After for a try inside its wait or while too many log-ins are being checked; 403 when
        locked (waiting does not help)."""
        if refused.reason == "locked":
            return self.render(request, "login.html", status=403, next=nxt, error=gettext(LOGIN_LOCKED))
        error = (gettext(LOGIN_BUSY) if refused.reason == "busy"
                 else gettext(LOGIN_WAIT, seconds=refused.retry_after))
        response = self.render(request, "login.html", status=429, next=nxt, error=error)
        response.headers["Retry-After"] = str(refused.retry_after)
        return response

    async def _record(self, user: A, event_type: str, payload: dict[str, Any]) -> None:
        c = self.config

        def run() -> None:
            with self.db().begin() as conn:
                audit.append(conn, event_type=event_type, actor=f"{c.actor_prefix}{user.username}",
                             tenant_id=c.audit_tenant(user), subject=f"{c.subject_prefix}{user.id}",
                             payload=payload)

        await anyio.to_thread.run_sync(run)
