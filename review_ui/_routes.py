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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import anyio.to_thread
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.utils.scope.state import ScopeState

from smsguard import console, i18n, webauth
from smsguard.core import SmsguardError
from smsguard.i18n import gettext
from smsguard.review import load_review_config
from smsguard.review._queue import Queue
from smsguard.review._service import MAX_BULK, Filters, Outcome, ReviewError, ReviewService, now
from smsguard.review._stats import TeamStats, team_stats
from smsguard.review._stats import metrics_text as stats_metrics_text
from smsguard.review._tables import review_sessions
from smsguard.review._users import ACCOUNTS, User
from smsguard.runtime import Runtime
from smsguard.webauth import http_status

from ._labels import GLOBALS as LABELS
from ._signatures import signature_handlers, template_handlers

log = logging.getLogger("smsguard.review_ui")
STATS_TTL = 15.0
HERE = Path(__file__).resolve().parent

# The same as the console's: the one-key approve page must not be framed (clickjacking), and it runs only its own
# script and styles.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


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


def _local(at: datetime | str | None, zone: str, fmt: str = "%m-%d %H:%M") -> str:
    """A stored (UTC) time in ``zone``: the reviewer reads an item's times as its tenant does."""
    if at is None or at == "":
        return ""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(ZoneInfo(zone)).strftime(fmt)


class ReviewUI:
    """Everything the UI holds per process; ``start``/``stop`` run with the app (after/before the API's)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.service: ReviewService | None = None
        self._loop: asyncio.Task | None = None
        self._stats: tuple[float, TeamStats] | None = None
        self.zones: dict[str | int, str] = {}
        """Each tenant's time zone by name (``console.tenant_time_zones``), refreshed by the background loop."""
        self.templates = JinjaTemplateEngine(directory=[HERE / "templates", webauth.TEMPLATES, i18n.TEMPLATES])
        env = self.templates.engine
        env.filters["age"] = _age
        env.globals["urlencode"] = urlencode
        i18n.install(env)
        # local(dt, tenant): in that tenant's zone; without a tenant (team figures), in the platform's default zone
        env.globals["local"] = lambda at, tenant=None, fmt="%m-%d %H:%M": _local(
            at, self.zones.get(tenant or "", console.DEFAULT_TIME_ZONE), fmt)
        env.globals.update(LABELS)
        env.globals["zone_of"] = lambda tenant=None: self.zones.get(tenant or "", console.DEFAULT_TIME_ZONE)
        self.auth: webauth.WebAuth[User] = webauth.WebAuth(webauth.WebAuthConfig(
            path="/review", accounts=ACCOUNTS, session_table=review_sessions, store="review_sessions",
            session_cookie="sg_review", csrf_cookie="sg_csrf", session_key="uid",
            session_extra=lambda user: {"username": user.username},
            via="review_ui", actor_prefix="user:", subject_prefix="user:", on_logout=self._release_all,
        ), db=lambda: self.runtime.db, render=self.render)
        self.router = self._build_router()

    # -- life cycle ------------------------------------------------------------------------------
    async def start(self, app: Any) -> None:
        """After the API's start (the Runtime is open by then)."""
        rt = self.runtime
        config = load_review_config(rt.settings, policy=rt.screening.policy, queue=rt.policy.review)
        queue = Queue(rt.db, rt.redis, namespace=rt.settings.redis_namespace, config=config)
        self.service = ReviewService(rt.db, queue, config)
        self.auth.register_store(app)
        self._loop = asyncio.create_task(self._background())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def _background(self) -> None:
        """Dispatch newly submitted items (and re-drive everything after Redis lost its data) every second;
        return expired leases to the pool and trim decided entries every 10 seconds."""
        last_reap = last_zones = 0.0
        while True:
            try:
                if time.monotonic() - last_zones > 60:
                    self.zones = await anyio.to_thread.run_sync(console.tenant_time_zones, self.runtime.db)
                    last_zones = time.monotonic()
                await anyio.to_thread.run_sync(self.service.queue.dispatch)
                # decisions whose undo window closed: released from their SQL deadline (also after a restart)
                await anyio.to_thread.run_sync(self.service.release_due)
                if time.monotonic() - last_reap > 10:
                    await anyio.to_thread.run_sync(self.service.queue.reap)
                    last_reap = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis or SQL briefly away: try again next turn
                log.warning("review dispatch: %s", e)
            await asyncio.sleep(1.0)

    # -- helpers ---------------------------------------------------------------------------------
    def _release_all(self, user: User) -> None:
        if self.service is not None:
            self.service.release_all(user)

    def offer_undo(self, request: Request, outcome: Outcome) -> None:
        """After a decision that is pending release, the next page shows the Undo control with its countdown."""
        if outcome.decided_ids and outcome.release_at is not None:
            left = max(0, round((outcome.release_at - now()).total_seconds()))
            request.session["undo"] = {"ids": outcome.decided_ids[:MAX_BULK + 1], "seconds": left,
                                       "until": outcome.release_at.isoformat()}

    def filters(self, request: Request) -> Filters:
        """The queue filters of the request's URL; a bad value raises ``ReviewError`` naming the parameter."""
        categories = self.service.config.categories if self.service else ()
        return Filters.from_query(dict(request.query_params), categories=categories)

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        ctx.setdefault("user", self.auth.user(request))
        ctx["csrf_token"] = ScopeState.from_scope(request.scope).csrf_token
        session = request.scope.get("session")
        ctx["flash"] = request.session.pop("flash", None) if session else None
        ctx.setdefault("conflict", request.session.pop("conflict", None) if session else None)
        ctx.setdefault("undo", request.session.pop("undo", None) if session else None)
        ctx["here"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = self.templates.get_template(name).render(**ctx)
        return Response(html, status_code=status, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def stats(self) -> TeamStats:
        """The team figures of the last 24 h, computed at most every ``STATS_TTL`` seconds per process."""
        if self._stats is None or time.monotonic() - self._stats[0] > STATS_TTL:
            assert self.service is not None
            self._stats = (time.monotonic(), await self.run(team_stats, self.runtime.db, self.service.config))
        return self._stats[1]

    async def metrics_text(self) -> bytes:
        if self.service is None:
            return b""
        try:
            return stats_metrics_text(await self.stats())
        except Exception as e:  # SQL briefly away: the rest of /metrics still answers
            log.warning("review stats for /metrics: %s", e)
            return b""

    # -- routes ----------------------------------------------------------------------------------
    def _build_router(self) -> Router:
        ui = self

        @get("/", include_in_schema=False)
        async def queue_page(request: Request) -> Response:
            await ui.auth.require(request)
            try:
                filters = ui.filters(request)
            except SmsguardError as e:
                view = await ui.run(ui.service.queue_view, Filters())
                return ui.render(request, "queue.html", status=400, view=view, filters=Filters(), fq="",
                                 filter_error=f"{e.where}: {e.message}")
            view = await ui.run(ui.service.queue_view, filters)
            return ui.render(request, "queue.html", view=view, filters=filters, fq=urlencode(filters.query()),
                             sla_minutes=ui.service.config.queue.sla_minutes,
                             reasons=ui.service.config.reasons_for(filters.category))

        @get("/summary", include_in_schema=False)
        async def summary(request: Request) -> Response:
            """What the queue page polls to stay live: its counters and the ids of the rows it would show."""
            await ui.auth.require(request, json={"error": "login"})
            try:
                filters = ui.filters(request)
            except SmsguardError as e:
                return Response({"error": e.message, "where": e.where}, status_code=400)
            view = await ui.run(ui.service.queue_view, filters)
            return Response({"total": view.total, "breached": view.breached, "near": view.near,
                             "counts": view.counts, "severity_counts": view.severity_counts,
                             "ids": [r["id"] for r in view.rows]}, headers={"Cache-Control": "no-store"})

        @get("/stats", include_in_schema=False)
        async def stats_page(request: Request) -> Response:
            await ui.auth.require(request)
            return ui.render(request, "stats.html", stats=await ui.stats(),
                             sla_minutes=ui.service.config.queue.sla_minutes)

        @get("/history", include_in_schema=False)
        async def history_page(request: Request) -> Response:
            user = await ui.auth.require(request)
            mine = request.query_params.get("mine") == "1"
            try:
                filters = ui.filters(request)
            except SmsguardError as e:
                return ui.render(request, "history.html", status=400, rows=[], filters=Filters(), mine=mine,
                                 filter_error=f"{e.where}: {e.message}")
            rows = await ui.run(ui.service.history, user, filters, mine=mine)
            return ui.render(request, "history.html", rows=rows, filters=filters, mine=mine)

        @post("/bulk", include_in_schema=False)
        async def bulk(request: Request) -> Response:
            user = await ui.auth.require(request)
            form = await request.form()
            try:
                fq = urlencode(ui.filters(request).query())
            except SmsguardError:
                fq = ""
            try:
                ids = [int(v) for v in form.getall("ids") if str(v).isdigit()] if "ids" in form else []
                outcome = await ui.run(ui.service.bulk_decide, user, ids, action=str(form.get("action") or ""),
                                       reason=str(form.get("reason") or "") or None,
                                       reason_code=str(form.get("reason_code") or "") or None)
                request.session["flash"] = outcome.message
                ui.offer_undo(request, outcome)
            except SmsguardError as e:
                request.session["flash"] = gettext("nothing decided: %(why)s", why=e.message)
            return Redirect(f"/review?{fq}", status_code=303)

        @post("/items/{item_id:int}/force-release", include_in_schema=False)
        async def force_release(request: Request, item_id: FromPath[int]) -> Response:
            user = await ui.auth.require(request)
            try:
                freed = await ui.run(ui.service.force_release, user, item_id)
                request.session["flash"] = (gettext("item %(id)s given back to the queue", id=item_id) if freed
                                            else gettext("item %(id)s was not held by anyone", id=item_id))
            except SmsguardError as e:
                request.session["conflict"] = str(e.message)
            return Redirect(f"/review/items/{item_id}", status_code=303)

        @post("/claim", include_in_schema=False)
        async def claim_next(request: Request) -> Response:
            user = await ui.auth.require(request)
            try:
                filters = ui.filters(request)
            except SmsguardError as e:
                request.session["flash"] = f"{e.where}: {e.message}"
                return Redirect("/review")
            fq = urlencode(filters.query())
            item = await ui.run(ui.service.claim_next, user, filters)
            if item is None:
                request.session["flash"] = gettext("nothing left to claim with these filters")
                return Redirect(f"/review?{fq}")
            return Redirect(f"/review/items/{item}?{fq}")

        @get("/items/{item_id:int}", include_in_schema=False)
        async def item_page(request: Request, item_id: FromPath[int]) -> Response:
            user = await ui.auth.require(request)
            try:
                filters = ui.filters(request)
            except SmsguardError:
                return Redirect(f"/review/items/{item_id}")
            try:
                # Opening an item claims it when the reviewer may act on it and nobody else holds it.
                if user.can_act:
                    await ui.run(ui.service.claim, user, item_id)
                view = await ui.run(ui.service.item_view, user, item_id)
            except SmsguardError as e:
                return ui.render(request, "error.html", status=http_status(e), message=str(e.message))
            return ui.render(request, "item.html", v=view, filters=filters, fq=urlencode(filters.query()),
                             lease_seconds=ui.service.config.lease_seconds,
                             reasons=ui.service.config.reasons_for(view.item["category"]),
                             categories=ui.service.config.categories)

        @post("/items/{item_id:int}/decide", include_in_schema=False)
        async def decide(
            request: Request, item_id: FromPath[int],
            data: URLEncodedBody[dict[str, str]],
        ) -> Response:
            user = await ui.auth.require(request)
            try:
                filters = ui.filters(request)
            except SmsguardError:
                filters = Filters()
            fq = urlencode(filters.query())
            try:
                version = int(data.get("version") or 0) if (data.get("version") or "0").isdigit() else -1
                outcome = await ui.run(
                    ui.service.decide, user, item_id, version=version, action=data.get("action") or "",
                    reason=data.get("reason"), category=data.get("category") or None, bulk=data.get("bulk") == "1",
                    reason_code=data.get("reason_code") or None,
                )
            except SmsguardError as e:
                # Post/Redirect/Get: the item page shows why, and reloading it does not post the decision again.
                request.session["conflict"] = str(e.message)
                return Redirect(f"/review/items/{item_id}?{fq}", status_code=303)
            request.session["flash"] = outcome.message
            ui.offer_undo(request, outcome)
            nxt = await ui.run(ui.service.claim_next, user, filters)
            return Redirect(f"/review/items/{nxt}?{fq}" if nxt else f"/review?{fq}")

        @post("/undo", include_in_schema=False)
        async def undo(request: Request) -> Response:
            """Take back the reviewer's last decision(s) while still pending release. A script asking for JSON
            gets ``{"item_id", "url", "message"}`` or the error (409 ``review.undo_expired`` after the window);
            a plain form is redirected to the item (or back to the queue with the reason it was refused)."""
            wants_json = "application/json" in (request.headers.get("accept") or "")
            user = await ui.auth.require(request, json={"error": "login"} if wants_json else None)
            form = await request.form()
            raw = form.getall("ids") if "ids" in form else []
            try:
                bad = [str(v) for v in raw if not str(v).isdigit()]
                if bad:
                    raise ReviewError(f"ids must be item numbers, not {bad[0]!r}", where="ids", code="review.ids")
                outcome = await ui.run(ui.service.undo, user, [int(v) for v in raw])
            except SmsguardError as e:
                if wants_json:
                    return Response({"error": e.message, "code": e.code, "where": e.where},
                                    status_code=http_status(e), headers=SECURITY_HEADERS)
                request.session["flash"] = gettext("undo refused: %(why)s", why=e.message)
                return Redirect("/review", status_code=303)
            try:  # back to the item within the filters the reviewer was working in
                fq = urlencode(ui.filters(request).query())
            except SmsguardError:
                fq = ""
            url = f"/review/items/{outcome.item_id}" + (f"?{fq}" if fq else "")
            if wants_json:
                request.session["flash"] = outcome.message
                return Response({"item_id": outcome.item_id, "url": url, "message": outcome.message,
                                 "undone": outcome.bulk_done}, status_code=200, headers=SECURITY_HEADERS)
            request.session["flash"] = outcome.message
            return Redirect(url, status_code=303)

        @post("/items/{item_id:int}/extend", include_in_schema=False)
        async def extend(request: Request, item_id: FromPath[int]) -> Response:
            user = await ui.auth.require(request, json={"ok": False, "error": "login"})
            ok = await ui.run(ui.service.extend, user, item_id)
            return Response({"ok": ok, "lease_seconds": ui.service.config.lease_seconds},
                            status_code=200 if ok else 409)

        @post("/items/{item_id:int}/release", include_in_schema=False)
        async def release(request: Request, item_id: FromPath[int]) -> Response:
            user = await ui.auth.require(request)
            await ui.run(ui.service.release, user, item_id)
            if request.headers.get("x-beacon") or request.query_params.get("beacon"):
                return Response(b"", status_code=204)  # the page is gone (navigator.sendBeacon on leaving it)
            try:
                fq = urlencode(ui.filters(request).query())
            except SmsguardError:
                fq = ""
            return Redirect(f"/review?{fq}")

        static = create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False)
        return Router(
            path="/review",
            route_handlers=[*ui.auth.route_handlers(), i18n.language_switch("/review"), queue_page, summary, stats_page,
                            history_page, bulk, claim_next,
                            item_page, decide, undo, extend, release, force_release, *signature_handlers(ui),
                            *template_handlers(ui), static],
            middleware=[i18n.language_middleware, *ui.auth.middleware(ui.runtime.secrets.session_secret)],
            exception_handlers={webauth.LoginRequired: _login_required},
            include_in_schema=False,
        )


def _login_required(request: Request, exc: webauth.LoginRequired) -> Response:
    """Nobody logged in: the page's scripts get 401 with their JSON, a page the log-in form (then back here)."""
    if exc.json is not None:
        return Response(exc.json, status_code=401)
    back = exc.next or request.url.path + "?" + request.url.query
    return Redirect(f"/review/login?{urlencode({'next': back})}")


__all__ = ["ReviewUI"]
