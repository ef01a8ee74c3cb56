"""The customer web console under ``/console``: templates, contact lists, compose, batches and reports.

Server-rendered (Jinja2) pages whose forms work without JavaScript; ``console.js`` adds the live character /
segment / cost counter (backed by ``POST /console/api/estimate``), reason highlighting before submitting,
and live batch progress over server-sent events (``/console/batches/{id}/events``, polling as fallback).

Security is ``webauth``'s, shared with the reviewer UI: litestar server-side sessions in SQL
(``review_sessions``, keys prefixed ``console:``), litestar's CSRF middleware on this router (forms carry
``_csrf_token``, fetches send ``X-CSRFToken``), argon2id accounts. Accounts are bound to one tenant and every
read and write below takes the tenant from the session, never from the request; another tenant's id answers
404 as if it did not exist. Role ``viewer`` reads; only ``customer`` writes (403 otherwise).

The pages of this module are litestar controllers, one per area (templates, lists, compose, batches, opt-outs);
their handlers get the process's ``ConsoleUI`` injected as ``ui`` (a router dependency) and sign in through
``need``. ``_signatures`` and ``_pages`` hold the other areas' handlers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from litestar import Controller, Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, MultipartBody, URLEncodedBody
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, ServerSentEvent, Stream
from litestar.response.sse import ServerSentEventMessage
from litestar.static_files import create_static_files_router
from litestar.utils.scope.state import ScopeState

from smsguard import batches, i18n, webauth
from smsguard.core import ForbiddenError, SmsguardError
from smsguard.i18n import _
from smsguard.review._tables import review_sessions
from smsguard.runtime import Runtime
from smsguard.webauth import http_status

from . import _data as model
from . import _drafts as drafts
from ._balance import balance_handlers
from ._highlight import highlight
from ._labels import FIELDS as FIELD_LABELS
from ._labels import GLOBALS as LABELS
from ._pages import daily_chart, page_handlers
from ._signatures import signature_handlers
from ._users import ACCOUNTS, ConsoleUser

log = logging.getLogger("smsguard.console")
HERE = Path(__file__).resolve().parent
SSE_MAX_SECONDS = 120.0
"""An event stream closes after this long (the browser's EventSource reconnects by itself), so a forgotten tab
never pins a server task and a graceful shutdown never waits on one for long."""
SSE_INTERVAL = 1.0


def _money(v: Any) -> str:
    return f"{float(v):,.4f}" if v is not None else "–"


class ConsoleUI:
    """The console's per-process state; ``start``/``stop`` run with the app."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._ctx: batches.Context | None = None
        self.templates = JinjaTemplateEngine(directory=[HERE / "templates", webauth.TEMPLATES, i18n.TEMPLATES])
        env = self.templates.engine
        i18n.install(env)
        env.filters["money"] = _money
        env.globals["highlight"] = highlight
        env.globals["urlencode"] = urlencode
        env.globals["local"] = model.local
        env.globals["carrier_label"] = model.CARRIER_LABELS.get
        env.globals["state_label"] = model.state_label
        env.globals.update(LABELS)
        env.filters.update(LABELS)
        # Sessions share the reviewer UI's table under a "console:" key prefix (a Redis flush must not log
        # customers out either), with a session key of their own: neither UI's session means anything to the other.
        self.auth: webauth.WebAuth[ConsoleUser] = webauth.WebAuth(webauth.WebAuthConfig(
            path="/console", accounts=ACCOUNTS, session_table=review_sessions, session_prefix="console:",
            store="console_sessions", session_cookie="sg_console", csrf_cookie="sg_console_csrf", session_key="cuid",
            session_extra=lambda user: {"realm": "console"},
            via="console", actor_prefix="console:", subject_prefix="console_user:",
            audit_tenant=lambda user: user.tenant_id,
        ), db=lambda: self.runtime.db, render=self.render)
        self.router = self._build_router()

    async def start(self, app: Any) -> None:
        """After the API's start (the Runtime is open by then)."""
        self._ctx = batches.Context.of(self.runtime, actor="system:console")
        self.auth.register_store(app)

    async def stop(self) -> None:
        self._ctx = None

    @property
    def ctx(self) -> batches.Context:
        """The batches Context on the Runtime (SQL, Redis, phone vault, engine), built at start."""
        ctx = self._ctx
        if ctx is None:
            raise SmsguardError("the service is starting", where=None, code="unavailable")
        return ctx

    # -- helpers ---------------------------------------------------------------------------------
    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        ctx.setdefault("user", self.auth.user(request))
        ctx["csrf_token"] = ScopeState.from_scope(request.scope).csrf_token
        ctx["flash"] = request.session.pop("flash", None) if request.scope.get("session") else None
        ctx.setdefault("nav", name.split(".")[0])
        ctx["here"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = self.templates.get_template(name).render(**ctx)
        return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                 "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                 "style-src 'self'; script-src 'self'; frame-ancestors 'none'"})

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A ``batches`` function with this process's Context, in the thread pool (SQL and Redis are sync)."""
        ctx = self.ctx
        return await anyio.to_thread.run_sync(lambda: fn(ctx, *args, **kwargs))

    # -- routes ----------------------------------------------------------------------------------
    def _build_router(self) -> Router:
        ui = self
        static = create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False)
        return Router(
            path="/console",
            route_handlers=[*ui.auth.route_handlers(), i18n.language_switch("/console"), HomeController,
                            TemplatesController, ListsController, ComposeController, BatchesController,
                            OptoutsController,
                            *signature_handlers(ui, ui.need, actor), *page_handlers(ui, ui.need, actor),
                            *balance_handlers(ui, ui.need, actor), static],
            # every handler of the controllers takes this process's ConsoleUI as ``ui``
            dependencies={"ui": Provide(lambda: ui, use_cache=True, sync_to_thread=False)},
            middleware=[i18n.language_middleware, *ui.auth.middleware(ui.runtime.secrets.session_secret)],
            # plain functions, not bound methods: litestar deep-copies a router's options when it registers it
            exception_handlers={webauth.LoginRequired: lambda r, e: login_redirect(r),
                                SmsguardError: lambda r, e: ui._error(r, e),
                                HTTPException: lambda r, e: ui._http_error(r, e)},
            include_in_schema=False,
        )

    async def need(self, request: Request, *, write: bool = False) -> ConsoleUser:
        """``need`` with this UI, for the handler modules that take it as a function (signatures, pages)."""
        return await need(self, request, write=write)

    def csv(self, fn: Callable[..., Iterator[str]], tenant_id: int, ref: int, filename: str) -> Stream:
        return self.csv_rows(fn(self.ctx, tenant_id, ref), filename)

    def csv_rows(self, it: Iterator[str], filename: str) -> Stream:
        async def chunks() -> AsyncIterator[bytes]:
            yield "\ufeff".encode()  # a BOM: Excel on a Chinese Windows then opens the UTF-8 file correctly
            while True:
                part = await anyio.to_thread.run_sync(next, it, None)
                if part is None:
                    return
                yield part.encode("utf-8")

        headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
        return Stream(chunks(), media_type="text/csv; charset=utf-8", headers=headers)

    def _error(self, request: Request, exc: SmsguardError) -> Response:
        if _wants_json(request):
            return Response(exc.to_dict(), status_code=http_status(exc))
        return self.render(request, "error.html", status=http_status(exc), message=exc.message, code=exc.code)

    def _http_error(self, request: Request, exc: HTTPException) -> Response:
        session = request.scope.get("session")
        if (_wants_json(request) and exc.status_code == 403 and "CSRF" in str(exc.detail)
                and not (isinstance(session, dict) and session.get("cuid"))):
            # the session ended (expired, revoked) and took its CSRF binding with it: say "log in again", so the
            # page keeps what was being typed and comes back to it, instead of a bare 403
            return Response({"code": "login", "message": _("log in again"), "where": None}, status_code=401)
        if _wants_json(request):
            return Response({"code": "http.error", "message": exc.detail, "where": None}, status_code=exc.status_code)
        try:
            return self.render(request, "error.html", status=exc.status_code, message=exc.detail, code="http.error")
        except Exception:  # no session/CSRF state yet (the middleware itself refused): plain text
            return Response(exc.detail, status_code=exc.status_code, media_type="text/plain; charset=utf-8")


def login_redirect(request: Request) -> Response:
    if request.url.path.startswith("/console/api/") or request.headers.get("accept") == "text/event-stream":
        return Response({"code": "login", "message": _("log in again"), "where": None}, status_code=401)
    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/console/login?{urlencode({'next': nxt})}")


async def need(ui: ConsoleUI, request: Request, *, write: bool = False) -> ConsoleUser:
    """The signed-in user (``LoginRequired`` if none); ``write``: one whose role may change things."""
    user = await ui.auth.require(request)
    if write and not user.can_write:
        raise ForbiddenError(_("role %(role)s may only read; ask for a customer account", role=user.role),
                             where=None, code="console.forbidden")
    return user


def actor(user: ConsoleUser) -> str:
    return f"console:{user.username}"


async def render_compose(ui: ConsoleUI, request: Request, u: ConsoleUser, form: dict[str, Any], *, preview: Any,
                         errors: dict[str, str], status: int = 200, draft: Any = None) -> Response:
    tpls = await ui.run(model.list_templates, ui.runtime.db, u.tenant_id, approved_only=True)
    lists = await ui.run(model.list_contact_lists, ui.runtime.db, u.tenant_id)
    lists = [r for r in lists if r["status"] == "ready"]
    policy = ui.ctx.policy
    fields, other = split_errors(errors)
    return ui.render(request, "compose.html", status=status, form=form, preview=preview, errors=fields,
                     other_errors=other, tpls=tpls, lists=lists, limits=policy.screening.length, prices=policy.prices,
                     quiet=policy.batches.quiet_hours, draft=draft,
                     default_name=model.default_batch_name(u.time_zone))


def compose_args(form: dict[str, Any], u: ConsoleUser) -> dict[str, Any]:
    adhoc = form.get("mode") != "template"
    return {
        "kind": form.get("kind") or "notification",
        "signature": form.get("signature") or "",
        "content": form.get("content") if adhoc else None,
        "numbers": form.get("numbers") if adhoc else None,
        "template_id": None if adhoc else _int(form.get("template_id")),
        "list_id": None if adhoc else _int(form.get("list_id")),
        "schedule_at": form.get("schedule_at") or None,
        "tz": u.time_zone,
    }


class HomeController(Controller):
    """The landing page: the batches list for a signed-in user, the log-in page otherwise."""

    path = "/"
    include_in_schema = False

    @get("/", include_in_schema=False)
    async def home(self, request: Request, ui: ConsoleUI) -> Response:
        await need(ui, request)
        return Redirect("/console/batches")


class TemplatesController(Controller):
    """Templates: list, create (screened now), a template with its versions, a new version, the live preview."""

    path = "/"
    include_in_schema = False

    @get("/templates", include_in_schema=False)
    async def templates_page(self, request: Request, ui: ConsoleUI) -> Response:
        u = await need(ui, request)
        rows = await ui.run(model.list_templates, ui.runtime.db, u.tenant_id)
        return ui.render(request, "templates.html", rows=rows, form={}, preview=None, errors={})

    @post("/templates", include_in_schema=False)
    async def create_template(
        self, request: Request, ui: ConsoleUI, data: URLEncodedBody[dict[str, str]]
    ) -> Response:
        u = await need(ui, request, write=True)
        form = {k: (data.get(k) or "").strip() for k in ("name", "kind", "signature", "body")}
        try:
            t = await ui.call(batches.create_template, u.tenant_id, name=form["name"] or "template",
                              kind=form["kind"], signature=form["signature"], body=form["body"], actor=actor(u))
        except SmsguardError as e:
            if http_status(e) >= 500:
                raise
            rows = await ui.run(model.list_templates, ui.runtime.db, u.tenant_id)
            return ui.render(request, "templates.html", status=400, rows=rows, form=form, preview=None,
                             errors={(e.where or "$").removeprefix("$."): e.message})
        request.session["flash"] = _("template %(name)s saved: %(status)s", name=t["name"],
                                     status=LABELS["template_status"](t["status"]))
        return Redirect(f"/console/templates/{t['id']}")

    @get("/templates/{template_id:int}", include_in_schema=False)
    async def template_page(self, request: Request, ui: ConsoleUI, template_id: FromPath[int]) -> Response:
        u = await need(ui, request)
        t = await ui.call(batches.get_template, u.tenant_id, template_id)
        text = model.template_text(t["signature"], t["body"], t["kind"])
        verdict = t.get("verdict") or {}
        versions = await ui.call(batches.template_history, u.tenant_id, template_id)
        return ui.render(request, "template.html", t=t, text=text, verdict=verdict, versions=versions,
                         version_error=request.session.pop("version_error", None))

    @post("/templates/{template_id:int}/versions", include_in_schema=False)
    async def template_version(self, request: Request, ui: ConsoleUI, template_id: FromPath[int]) -> Response:
        """Edit, or resubmit after a rejection: a new version for a platform reviewer (issue 19)."""
        u = await need(ui, request, write=True)
        form = await request.form()
        try:
            await ui.call(batches.propose_version, u.tenant_id, template_id, body=str(form.get("body") or ""),
                          actor=actor(u))
            request.session["flash"] = _("new version submitted for review")
        except SmsguardError as e:
            if http_status(e) >= 500 or http_status(e) == 404:
                raise
            request.session["version_error"] = e.message
        return Redirect(f"/console/templates/{template_id}", status_code=303)

    @post("/api/template-preview", include_in_schema=False, status_code=200)
    async def template_preview(self, request: Request, ui: ConsoleUI) -> Response:
        """The screening verdict a template would get, before it is saved (same text, same engine)."""
        u = await need(ui, request)
        body = await _json(request)
        kind = str(body.get("kind") or "notification")
        sig = str(body.get("signature") or "").strip().strip("【】")
        text = model.template_text(sig, str(body.get("body") or ""), kind) if body.get("body") else ""
        if not text.strip():
            return Response({"decision": None, "html": "", "reasons": []})
        v = await ui.run(model.screen, ui.ctx, u.tenant, text, kind, sig)
        return Response({"decision": v["decision"], "text": text, "length": v["length"],
                         "segments": v["segments"], "reasons": v["reasons"],
                         "html": str(highlight(text, v["reasons"]))})


class ListsController(Controller):
    """Contact lists: upload, preview, export, merge, the error report, delete."""

    path = "/"
    include_in_schema = False

    @get("/lists", include_in_schema=False)
    async def lists_page(self, request: Request, ui: ConsoleUI) -> Response:
        u = await need(ui, request)
        rows = await ui.run(model.list_contact_lists, ui.runtime.db, u.tenant_id)
        return ui.render(request, "lists.html", rows=rows, error=None)

    @post("/lists", include_in_schema=False, request_max_body_size=256 * 1024 * 1024)
    async def upload_list(
        self, request: Request, ui: ConsoleUI, data: MultipartBody[dict[str, Any]],
    ) -> Response:
        u = await need(ui, request, write=True)
        upload = data.get("file")
        name = str(data.get("name") or "").strip()
        if not isinstance(upload, UploadFile) or not upload.filename:
            rows = await ui.run(model.list_contact_lists, ui.runtime.db, u.tenant_id)
            return ui.render(request, "lists.html", status=400, rows=rows, error=_("choose a CSV file"))
        try:
            result = await ui.call(batches.import_contacts, u.tenant_id, name or upload.filename, upload.file,
                                   actor=actor(u))
        except SmsguardError as e:
            if http_status(e) >= 500:
                raise
            rows = await ui.run(model.list_contact_lists, ui.runtime.db, u.tenant_id)
            return ui.render(request, "lists.html", status=400, rows=rows,
                             error=f"{upload.filename}: {e.message}" + (f" ({e.where})" if e.where else ""))
        finally:
            await upload.close()
        request.session["flash"] = _("imported %(valid)s of %(total)s lines; %(invalid)s invalid, "
                                     "%(duplicates)s duplicates", valid=result["valid"], total=result["total"],
                                     invalid=result["invalid"], duplicates=result["duplicates"])
        return Redirect(f"/console/lists/{result['id']}")

    @get("/lists/{list_id:int}", include_in_schema=False)
    async def list_page(self, request: Request, ui: ConsoleUI, list_id: FromPath[int]) -> Response:
        u = await need(ui, request)
        # the tenant's own report: the lines as it uploaded them (masked only in logs and the audit trail)
        lst = await ui.call(batches.get_list, u.tenant_id, list_id, errors=500, full=True)
        opted = next((r["opted_out"] for r in await ui.run(model.list_contact_lists, ui.runtime.db, u.tenant_id)
                      if r["id"] == list_id), 0)
        ready = lst["status"] == "ready"
        preview = await ui.call(batches.preview_contacts, u.tenant_id, list_id) if ready else None
        return ui.render(request, "list.html", lst=lst, opted_out=opted, preview=preview)

    @get("/lists/{list_id:int}/export.csv", include_in_schema=False)
    async def list_export(self, request: Request, ui: ConsoleUI, list_id: FromPath[int]) -> Response:
        """The whole list as CSV: numbers in full for the tenant's customers (their own upload), masked for a
        viewer (who only reads, as on every page); formula cells neutralized; an audit event."""
        u = await need(ui, request)
        rows = await ui.call(batches.export_contacts, u.tenant_id, list_id, full=u.can_write, actor=actor(u),
                             via="console")
        return ui.csv_rows(rows, f"list-{list_id}.csv")

    @post("/lists/merge", include_in_schema=False)
    async def list_merge(self, request: Request, ui: ConsoleUI) -> Response:
        """Two or more lists into a new one (``batches.merge_lists``: one contact per number)."""
        u = await need(ui, request, write=True)
        form = await request.form()
        raw = [str(v) for v in form.getall("list_ids")] if "list_ids" in form else []
        name = str(form.get("name") or "").strip()
        try:
            # oldest first: the form lists newest first, and "the first list wins" must not depend on that
            ids = sorted(int(v) for v in raw if v.isdigit() and len(v) < 12)
            result = await ui.call(batches.merge_lists, u.tenant_id, ids, name or "merged", actor=actor(u))
        except SmsguardError as e:
            if http_status(e) >= 500:
                raise
            rows = await ui.run(model.list_contact_lists, ui.runtime.db, u.tenant_id)
            return ui.render(request, "lists.html", status=http_status(e), rows=rows, error=None,
                             merge_error=e.message, merge_name=name, merge_ids=raw)
        request.session["flash"] = _("merged %(n)s lists: %(valid)s contacts, %(duplicates)s duplicates dropped, "
                                     "%(opted_out)s opted out (kept, skipped at release)", n=len(result["sources"]),
                                     valid=result["valid"], duplicates=result["duplicates"],
                                     opted_out=result["opted_out"])
        return Redirect(f"/console/lists/{result['id']}", status_code=303)

    @get("/lists/{list_id:int}/rejects.csv", include_in_schema=False)
    async def list_rejects(self, request: Request, ui: ConsoleUI, list_id: FromPath[int]) -> Response:
        u = await need(ui, request)
        await ui.call(batches.get_list, u.tenant_id, list_id, errors=0)  # 404 for another tenant's list
        return ui.csv(lambda ctx, t, ref: batches.rejects_csv(ctx, t, ref, full=True), u.tenant_id, list_id,
                      f"list-{list_id}-rejects.csv")

    @post("/lists/{list_id:int}/delete", include_in_schema=False)
    async def list_delete(
        self, request: Request, ui: ConsoleUI, list_id: FromPath[int], data: URLEncodedBody[dict[str, str]],
    ) -> Response:
        u = await need(ui, request, write=True)
        lst = await ui.call(batches.get_list, u.tenant_id, list_id, errors=0)  # 404 for another tenant's list
        if data.get("confirm") != "yes":  # without JavaScript's dialog: a page that asks first
            return ui.render(request, "confirm.html", nav="lists", action=f"/console/lists/{list_id}/delete",
                             title=_("Delete contact list #%(id)s · %(name)s?", id=list_id, name=lst["name"]),
                             message=_("Its %(n)s contact(s) and its error report are deleted. This cannot be "
                                       "undone.", n=lst["valid"]),
                             confirm=_("Delete the list"), back=f"/console/lists/{list_id}")
        await ui.call(batches.delete_list, u.tenant_id, list_id, actor=actor(u))
        request.session["flash"] = _("contact list #%(id)s %(name)s deleted", id=list_id, name=lst["name"])
        return Redirect("/console/lists")


class ComposeController(Controller):
    """Compose: the form, the live estimate, drafts kept across a re-login, the submit."""

    path = "/"
    include_in_schema = False

    @get("/compose", include_in_schema=False)
    async def compose_page(self, request: Request, ui: ConsoleUI, template_id: FromQuery[int | None] = None,
                           list_id: FromQuery[int | None] = None) -> Response:
        u = await need(ui, request)
        form: dict[str, Any] = {"mode": "template" if template_id or list_id else "adhoc",
                                "template_id": template_id or "", "list_id": list_id or "", "kind": "marketing"}
        draft = None
        if template_id is None and list_id is None:  # a fresh compose picks up where the user left off
            draft = await ui.run(drafts.load, ui.runtime.db, ui.ctx.vault, u.id, u.tenant_id)
            if draft is not None:
                form = {**form, **draft["form"]}
        return await render_compose(ui, request, u, form, preview=None, errors={}, draft=draft)

    @post("/api/estimate", include_in_schema=False, status_code=200)
    async def estimate(self, request: Request, ui: ConsoleUI) -> Response:
        """The compose form's live preview (JSON): verdict with highlighted reasons, length, segments,
        recipients, cost and quiet hours, computed by the engine and the policy, as submit will."""
        u = await need(ui, request)
        form = await _json(request)
        args = compose_args({k: str(v) if v is not None else "" for k, v in form.items()}, u)
        if args["template_id"] is None and form.get("mode") == "template":
            return Response({"errors": {"template_id": _("choose a template")}, "decision": None})
        result = await ui.call(model.estimate, u.tenant_id, u.tenant, **args)
        result["html"] = str(highlight(result["text"], (result["verdict"] or {}).get("reasons", [])))
        return Response(result)

    @post("/api/draft", include_in_schema=False, status_code=200)
    async def save_draft(self, request: Request, ui: ConsoleUI) -> Response:
        """The compose form as it is being edited, kept for this user (restored after a re-login)."""
        u = await need(ui, request, write=True)
        form = await _json(request)
        at = await ui.run(drafts.save, ui.runtime.db, ui.ctx.vault, u.id, u.tenant_id, form)
        return Response({"saved_at": at.isoformat(), "saved_local": model.local(at, u.time_zone, "%H:%M:%S")})

    @post("/compose/discard", include_in_schema=False)
    async def discard_draft(self, request: Request, ui: ConsoleUI) -> Response:
        u = await need(ui, request, write=True)
        await ui.run(drafts.discard, ui.runtime.db, u.id)
        request.session["flash"] = _("draft discarded")
        return Redirect("/console/compose")

    @post("/compose", include_in_schema=False)
    async def compose(
        self, request: Request, ui: ConsoleUI, data: URLEncodedBody[dict[str, str]]
    ) -> Response:
        u = await need(ui, request, write=True)
        form = {k: v for k, v in data.items() if k != "_csrf_token"}
        args = compose_args(form, u)
        preview = await ui.call(model.estimate, u.tenant_id, u.tenant, **args)
        errors = dict(preview["errors"])
        # Screened here, before anything is created: a blocked message comes back to the form with its
        # reasons drawn on the text, instead of becoming a batch that is cancelled at once.
        if preview["decision"] == "block":
            errors["content"] = _("blocked by screening: fix the highlighted reasons")
        if errors or form.get("action") == "check":
            return await render_compose(ui, request, u, form, preview=preview, errors=errors,
                                        status=400 if errors else 200)
        at = model.parse_local(args["schedule_at"], u.time_zone)
        try:
            b = await ui.call(
                batches.create_batch, u.tenant_id,
                name=(form.get("name") or "").strip() or model.default_batch_name(u.time_zone),
                template_id=args["template_id"], list_id=args["list_id"],
                content=args["content"].strip() if args["content"] else None,
                numbers=model.adhoc_numbers(args["numbers"]) if args["numbers"] is not None else None,
                kind=None if args["template_id"] else args["kind"],
                signature=None if args["template_id"] else preview["signature"],
                schedule_at=at, actor=actor(u),
            )
        except SmsguardError as e:
            if http_status(e) >= 500:
                raise
            errors[(e.where or "$").removeprefix("$.")] = e.message
            return await render_compose(ui, request, u, form, preview=preview, errors=errors, status=http_status(e))
        await ui.run(drafts.discard, ui.runtime.db, u.id)  # sent: the draft has done its job
        request.session["flash"] = _("batch #%(id)s created: %(state)s", id=b["id"],
                                     state=model.state_label(b, u.time_zone))
        return Redirect(f"/console/batches/{b['id']}")


class BatchesController(Controller):
    """Batches: the list with the dashboard chart, a batch's page, progress (JSON, SSE), report, cancel."""

    path = "/"
    include_in_schema = False

    @get("/batches", include_in_schema=False)
    async def batches_page(self, request: Request, ui: ConsoleUI) -> Response:
        u = await need(ui, request)
        rows = await ui.run(model.list_batches, ui.runtime.db, u.tenant_id, policy=ui.ctx.policy, tz=u.time_zone)
        chart = await ui.run(daily_chart, ui.ctx, u.tenant_id, u.time_zone)  # the landing page's dashboard
        return ui.render(request, "batches.html", rows=rows, chart=chart)

    @get("/batches/{batch_id:int}", include_in_schema=False)
    async def batch_page(self, request: Request, ui: ConsoleUI, batch_id: FromPath[int]) -> Response:
        u = await need(ui, request)
        p = await ui.call(model.progress, u.tenant_id, batch_id, tz=u.time_zone)
        content = await ui.run(_batch_content, ui.ctx, batch_id)
        return ui.render(request, "batch.html", b=p, content=content, progress_json=json.dumps(p, default=str),
                         cancel_message=cancel_message(p))

    @get("/batches/{batch_id:int}/progress", include_in_schema=False)
    async def batch_progress(self, request: Request, ui: ConsoleUI, batch_id: FromPath[int]) -> Response:
        u = await need(ui, request)
        p = await ui.call(model.progress, u.tenant_id, batch_id, tz=u.time_zone)
        return Response(p, headers={"Cache-Control": "no-store"})

    @get("/batches/{batch_id:int}/events", include_in_schema=False)
    async def batch_events(self, request: Request, ui: ConsoleUI, batch_id: FromPath[int]) -> Response:
        """Server-sent events: the batch's progress whenever it changed (checked every second) until it is
        final; the stream ends after ``SSE_MAX_SECONDS`` and the browser reconnects."""
        u = await need(ui, request)
        first = await ui.call(model.progress, u.tenant_id, batch_id, tz=u.time_zone)  # 404 before the stream opens

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            p, last, deadline = first, "", time.monotonic() + SSE_MAX_SECONDS
            while True:
                body = json.dumps(p, default=str, separators=(",", ":"))
                if body != last:
                    last = body
                    yield ServerSentEventMessage(data=body, event="progress")
                if p["final"] or time.monotonic() > deadline:
                    yield ServerSentEventMessage(data="{}", event="end" if p["final"] else "again")
                    return
                await asyncio.sleep(SSE_INTERVAL)
                p = await ui.call(model.progress, u.tenant_id, batch_id, tz=u.time_zone)

        return ServerSentEvent(stream(), retry_duration=2000, headers={"Cache-Control": "no-store"})

    @get("/batches/{batch_id:int}/report.csv", include_in_schema=False)
    async def batch_report(self, request: Request, ui: ConsoleUI, batch_id: FromPath[int]) -> Response:
        u = await need(ui, request)
        await ui.call(batches.get_batch, u.tenant_id, batch_id)  # 404 for another tenant's batch
        return ui.csv(batches.report_csv, u.tenant_id, batch_id, f"batch-{batch_id}.csv")

    @post("/batches/{batch_id:int}/cancel", include_in_schema=False)
    async def batch_cancel(
        self, request: Request, ui: ConsoleUI, batch_id: FromPath[int], data: URLEncodedBody[dict[str, str]],
    ) -> Response:
        u = await need(ui, request, write=True)
        if data.get("confirm") != "yes":  # without JavaScript's dialog: a page that asks first
            p = await ui.call(model.progress, u.tenant_id, batch_id, tz=u.time_zone)  # 404: another tenant's
            return ui.render(request, "confirm.html", nav="batches", action=f"/console/batches/{batch_id}/cancel",
                             title=_("Cancel batch #%(id)s · %(name)s?", id=batch_id, name=p["name"]),
                             message=cancel_message(p), confirm=_("Cancel the batch"),
                             back=f"/console/batches/{batch_id}")
        b = await ui.call(batches.cancel_batch, u.tenant_id, batch_id, actor=actor(u))
        request.session["flash"] = _("batch #%(id)s %(state)s", id=batch_id,
                                     state=LABELS["batch_state"](b["state"]))
        return Redirect(f"/console/batches/{batch_id}")


class OptoutsController(Controller):
    """Opt-outs: the tenant's opted-out numbers, searched."""

    path = "/"
    include_in_schema = False

    @get("/optouts", include_in_schema=False)
    async def optouts_page(self, request: Request, ui: ConsoleUI, q: FromQuery[str] = "") -> Response:
        u = await need(ui, request)
        result = await ui.call(model.search_optouts, u.tenant_id, q[:40])
        return ui.render(request, "optouts.html", r=result)


def split_errors(errors: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Field errors (shown next to their field) and the rest (budget, the batch as a whole), shown above."""
    fields = {k: v for k, v in errors.items() if k in FIELD_LABELS}
    return fields, [v for k, v in errors.items() if k not in FIELD_LABELS]


def cancel_message(p: dict[str, Any]) -> str:
    left = sum(p["counts"].get(s, 0) for s in ("queued", "deferred"))
    if left:
        return _("%(n)s recipient(s) not yet handed over will not be sent; the reserved cost is refunded. This cannot "
                 "be undone.", n=left)
    return _("nothing of it will be sent; the reserved cost is refunded. This cannot be undone.")


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/console/api/") or path.endswith("/progress") or path.endswith("/events")


def _int(v: Any) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except Exception:
        raise SmsguardError(_("the body is not JSON"), where="$", code="input.json") from None
    if not isinstance(body, dict):
        raise SmsguardError(_("the body must be a JSON object"), where="$", code="input.json")
    return body


def _batch_content(ctx: batches.Context, batch_id: int) -> list[dict[str, Any]]:
    """The batch's screened contents (first 20) with their reasons, for the report page. The caller has already
    checked the batch belongs to the user's tenant (``progress`` raised NotFoundError otherwise)."""
    from sqlalchemy import select

    from smsguard.batches._tables import batch_contents

    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(batch_contents).where(batch_contents.c.batch_id == batch_id)
            .order_by(batch_contents.c.content_id).limit(20)
        ).all()
    out = []
    for r in rows:
        v = json.loads(r.verdict)
        out.append({"text": r.text, "decision": r.decision, "review": r.review, "segments": r.segments,
                    "recipients": r.recipients, "reason": r.reason, "reasons": v.get("reasons", []),
                    "cost": r.cost_micros / 1_000_000})
    return out


__all__ = ["ConsoleUI"]
