"""The reviewer web UI: login, queue, item page, actions. Served by the API's app under ``/review``.

Server-rendered (Jinja2 through litestar's template engine) with a little progressive-enhancement JavaScript
for the keyboard shortcuts; plain HTML forms do everything without it. Log-in, sessions (server-side,
in SQL) and CSRF protection are ``webauth``'s, shared with the customer console; every state-changing form
carries a CSRF token, and the JSON API keeps API-key auth and stays CSRF-exempt.
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
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.utils.scope.state import ScopeState
from sqlalchemy import Engine

import webauth
from review import load_review_config
from review._queue import Queue
from review._service import Filters, ReviewError, ReviewService
from review._tables import review_sessions
from review._users import ACCOUNTS, User

log = logging.getLogger("smsguard.review_ui")
HERE = Path(__file__).resolve().parent


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
        self.templates = JinjaTemplateEngine(directory=[HERE / "templates", webauth.TEMPLATES])
        env = self.templates.engine
        env.filters["age"] = _age
        env.globals["urlencode"] = urlencode
        self.auth: webauth.WebAuth[User] = webauth.WebAuth(webauth.WebAuthConfig(
            path="/review", accounts=ACCOUNTS, session_table=review_sessions, store="review_sessions",
            session_cookie="sg_review", csrf_cookie="sg_csrf", session_key="uid",
            session_extra=lambda user: {"username": user.username},
            via="review_ui", actor_prefix="user:", subject_prefix="user:",
        ), db=lambda: self.api.db, render=self.render)
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
        self.auth.register_store(app)
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
        ctx.setdefault("user", self.auth.user(request))
        ctx["csrf_token"] = ScopeState.from_scope(request.scope).csrf_token
        ctx["flash"] = request.session.pop("flash", None) if request.scope.get("session") else None
        html = self.templates.get_template(name).render(**ctx)
        return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    # -- routes ----------------------------------------------------------------------------------
    def _build_router(self) -> Router:
        ui = self

        def login_redirect(request: Request) -> Redirect:
            return Redirect(f"/review/login?{urlencode({'next': request.url.path + '?' + request.url.query})}")

        @get("/", include_in_schema=False)
        async def queue_page(request: Request) -> Response:
            user = await ui.auth.current_user(request)
            if user is None:
                return login_redirect(request)
            filters = Filters.from_query(dict(request.query_params))
            view = await ui.run(ui.service.queue_view, filters)
            return ui.render(request, "queue.html", view=view, filters=filters, fq=urlencode(filters.query()))

        @post("/claim", include_in_schema=False)
        async def claim_next(request: Request) -> Response:
            user = await ui.auth.current_user(request)
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
            user = await ui.auth.current_user(request)
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
            user = await ui.auth.current_user(request)
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
            user = await ui.auth.current_user(request)
            if user is None:
                return Response({"ok": False, "error": "login"}, status_code=401)
            ok = await ui.run(ui.service.extend, user, item_id)
            return Response({"ok": ok, "lease_seconds": ui.service.config.lease_seconds},
                            status_code=200 if ok else 409)

        @post("/items/{item_id:int}/release", include_in_schema=False)
        async def release(request: Request, item_id: FromPath[int]) -> Response:
            user = await ui.auth.current_user(request)
            if user is None:
                return login_redirect(request)
            await ui.run(ui.service.release, user, item_id)
            fq = urlencode(Filters.from_query(dict(request.query_params)).query())
            return Redirect(f"/review?{fq}")

        static = create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False)
        return Router(
            path="/review",
            route_handlers=[*ui.auth.route_handlers(), queue_page, claim_next, item_page, decide, extend, release,
                            static],
            middleware=ui.auth.middleware(ui.api.settings.data_dir),
            include_in_schema=False,
        )


__all__ = ["ReviewUI"]
