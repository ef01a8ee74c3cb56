"""The reviewer web UI: login, queue, item page, actions. Served by the API's app under ``/review``.

Server-rendered (Jinja2 through litestar's template engine) with a little progressive-enhancement JavaScript
for the keyboard shortcuts; plain HTML forms do everything without it. Sessions are litestar server-side
sessions in SQL; every state-changing form carries a CSRF token (litestar's CSRF middleware, on this router
only: the JSON API keeps API-key auth and stays CSRF-exempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
import redis
from litestar import Request, Response, Router, get, post
from litestar.config.csrf import CSRFConfig
from litestar.enums import RequestEncodingType
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.utils.scope.state import ScopeState
from sqlalchemy import Engine

from review import load_review_config
from review._audit import emit
from review._queue import Queue
from review._service import Filters, ReviewError, ReviewService
from review._users import User, authenticate, get_user

from ._sessions import SqlSessionStore, load_secret

log = logging.getLogger("smsguard.review_ui")
HERE = Path(__file__).resolve().parent
STORE = "review_sessions"
SESSION_COOKIE = "sg_review"
SESSION_MAX_AGE = 12 * 3600


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


class ReviewUI:
    """Everything the UI holds per process; ``start``/``stop`` run with the app (after/before the API's)."""

    def __init__(self, api_service: Any) -> None:
        self.api = api_service
        self.service: ReviewService | None = None
        self._redis: redis.Redis | None = None
        self._loop: asyncio.Task | None = None
        self.templates = JinjaTemplateEngine(directory=HERE / "templates")
        env = self.templates.engine
        env.filters["age"] = _age
        env.globals["urlencode"] = urlencode
        self.secret = ""
        self.router = self._build_router()

    # -- life cycle ------------------------------------------------------------------------------
    async def start(self, app: Any) -> None:
        settings = self.api.settings
        db: Engine = self.api.db
        url = self.api._redis_location.url
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        config = load_review_config()
        queue = Queue(db, self._redis, namespace=settings.redis_namespace, config=config)
        self.service = ReviewService(db, queue, config)
        app.stores.register(STORE, SqlSessionStore(db), allow_override=True)
        self._loop = asyncio.create_task(self._background())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._redis is not None:
            self._redis.close()

    async def _background(self) -> None:
        """Dispatch newly submitted items (and re-drive everything after Redis lost its data) every second;
        return expired leases to the pool and trim decided entries every 10 seconds."""
        last_reap = 0.0
        while True:
            try:
                await anyio.to_thread.run_sync(self.service.queue.dispatch)
                if time.monotonic() - last_reap > 10:
                    await anyio.to_thread.run_sync(self.service.queue.reap)
                    last_reap = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis or SQL briefly away: try again next turn
                log.warning("review dispatch: %s", e)
            await asyncio.sleep(1.0)

    # -- helpers ---------------------------------------------------------------------------------
    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        ctx.setdefault("user", request.scope.get("review_user"))
        ctx["csrf_token"] = ScopeState.from_scope(request.scope).csrf_token
        ctx["flash"] = request.session.pop("flash", None) if request.scope.get("session") else None
        html = self.templates.get_template(name).render(**ctx)
        return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    async def current_user(self, request: Request) -> User | None:
        uid = request.session.get("uid") if request.scope.get("session") is not None else None
        if not uid:
            return None
        user = await anyio.to_thread.run_sync(get_user, self.service.db, int(uid))
        request.scope["review_user"] = user  # type: ignore[typeddict-unknown-key]
        return user

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    # -- routes ----------------------------------------------------------------------------------
    def _build_router(self) -> Router:
        ui = self

        def login_redirect(request: Request) -> Redirect:
            return Redirect(f"/review/login?{urlencode({'next': request.url.path + '?' + request.url.query})}")

        @get("/login", include_in_schema=False)
        async def login_page(request: Request, next: FromQuery[str] = "/review") -> Response:
            return ui.render(request, "login.html", next=next, error=None)

        @post("/login", include_in_schema=False)
        async def login(
            request: Request, data: dict[str, str] = Body(media_type=RequestEncodingType.URL_ENCODED)  # noqa: B008
        ) -> Response:
            username = (data.get("username") or "").strip()
            user = await ui.run(authenticate, ui.service.db, username, data.get("password") or "")
            nxt = data.get("next") or "/review"
            if not nxt.startswith("/review") or nxt.startswith("//"):  # no open redirects
                nxt = "/review"
            if user is None:
                return ui.render(request, "login.html", status=401, next=nxt, error="wrong user name or password")

            def record() -> None:
                with ui.service.db.begin() as conn:
                    emit(conn, event_type="login", actor=f"user:{user.username}", tenant_id=None,
                         subject=f"user:{user.id}", payload={"role": user.role, "via": "review_ui"})

            await ui.run(record)
            # a fresh session id at login (no session fixation): drop whatever the cookie pointed at
            request.clear_session()
            request.set_session({"uid": user.id, "username": user.username})
            return Redirect(nxt)

        @post("/logout", include_in_schema=False)
        async def logout(request: Request) -> Response:
            user = await ui.current_user(request)
            if user is not None:

                def record() -> None:
                    with ui.service.db.begin() as conn:
                        emit(conn, event_type="login.logout", actor=f"user:{user.username}", tenant_id=None,
                             subject=f"user:{user.id}", payload={"via": "review_ui"})

                await ui.run(record)
            request.clear_session()
            return Redirect("/review/login")

        @get("/", include_in_schema=False)
        async def queue_page(request: Request) -> Response:
            user = await ui.current_user(request)
            if user is None:
                return login_redirect(request)
            filters = Filters.from_query(dict(request.query_params))
            view = await ui.run(ui.service.queue_view, filters)
            return ui.render(request, "queue.html", view=view, filters=filters, fq=urlencode(filters.query()))

        @post("/claim", include_in_schema=False)
        async def claim_next(request: Request) -> Response:
            user = await ui.current_user(request)
            if user is None:
                return login_redirect(request)
            filters = Filters.from_query(dict(request.query_params))
            fq = urlencode(filters.query())
            item = await ui.run(ui.service.claim_next, user, filters)
            if item is None:
                request.session["flash"] = "nothing left to claim with these filters"
                return Redirect(f"/review?{fq}")
            return Redirect(f"/review/items/{item}?{fq}")

        @get("/items/{item_id:int}", include_in_schema=False)
        async def item_page(request: Request, item_id: FromPath[int]) -> Response:
            user = await ui.current_user(request)
            if user is None:
                return login_redirect(request)
            filters = Filters.from_query(dict(request.query_params))
            try:
                # Opening an item claims it when the reviewer may act on it and nobody else holds it.
                if user.can_act:
                    await ui.run(ui.service.claim, user, item_id)
                view = await ui.run(ui.service.item_view, user, item_id)
            except ReviewError as e:
                return ui.render(request, "error.html", status=e.status_code, message=str(e.message))
            return ui.render(request, "item.html", v=view, filters=filters, fq=urlencode(filters.query()),
                             conflict=None, lease_seconds=ui.service.config.lease_seconds)

        @post("/items/{item_id:int}/decide", include_in_schema=False)
        async def decide(
            request: Request, item_id: FromPath[int],
            data: dict[str, str] = Body(media_type=RequestEncodingType.URL_ENCODED),  # noqa: B008
        ) -> Response:
            user = await ui.current_user(request)
            if user is None:
                return login_redirect(request)
            filters = Filters.from_query(dict(request.query_params))
            fq = urlencode(filters.query())
            try:
                version = int(data.get("version") or 0)
                outcome = await ui.run(
                    ui.service.decide, user, item_id, version=version, action=data.get("action") or "",
                    reason=data.get("reason"), category=data.get("category") or None, bulk=data.get("bulk") == "1",
                )
            except ReviewError as e:
                view = await ui.run(ui.service.item_view, user, item_id)
                return ui.render(request, "item.html", status=e.status_code, v=view, filters=filters, fq=fq,
                                 conflict=str(e.message), conflict_code=e.code,
                                 lease_seconds=ui.service.config.lease_seconds)
            request.session["flash"] = outcome.message
            nxt = await ui.run(ui.service.claim_next, user, filters)
            return Redirect(f"/review/items/{nxt}?{fq}" if nxt else f"/review?{fq}")

        @post("/items/{item_id:int}/extend", include_in_schema=False)
        async def extend(request: Request, item_id: FromPath[int]) -> Response:
            user = await ui.current_user(request)
            if user is None:
                return Response({"ok": False, "error": "login"}, status_code=401)
            ok = await ui.run(ui.service.extend, user, item_id)
            return Response({"ok": ok, "lease_seconds": ui.service.config.lease_seconds},
                            status_code=200 if ok else 409)

        @post("/items/{item_id:int}/release", include_in_schema=False)
        async def release(request: Request, item_id: FromPath[int]) -> Response:
            user = await ui.current_user(request)
            if user is None:
                return login_redirect(request)
            await ui.run(ui.service.release, user, item_id)
            fq = urlencode(Filters.from_query(dict(request.query_params)).query())
            return Redirect(f"/review?{fq}")

        secret_holder: dict[str, str] = {}

        def csrf_config() -> CSRFConfig:
            if "s" not in secret_holder:
                secret_holder["s"] = load_secret(ui.api.settings.data_dir)
            return CSRFConfig(secret=secret_holder["s"], cookie_name="sg_csrf", cookie_path="/review",
                              cookie_samesite="strict")

        session = ServerSideSessionConfig(
            store=STORE, key=SESSION_COOKIE, max_age=SESSION_MAX_AGE, path="/review", httponly=True, samesite="lax",
        )
        static = create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False)
        return Router(
            path="/review",
            route_handlers=[login_page, login, logout, queue_page, claim_next, item_page, decide, extend, release,
                            static],
            middleware=[session.middleware, DefineMiddleware(CSRFMiddleware, config=csrf_config())],
            include_in_schema=False,
        )


__all__ = ["ReviewUI"]
