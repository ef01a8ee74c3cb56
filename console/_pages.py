"""The console's send records, webhook delivery log and API keys (issue 19 point 3, issue 17 point 4), and the
statistics: sends per day and hour by outcome, cost, failures by carrier code.

* ``/console/records``: every recipient of the tenant's batches (single API messages are one-recipient
  batches), newest first, searched by a full number (its keyed hash: numbers are never stored in clear, and
  shown masked), a date range in the tenant's zone, state and batch; a cursor pages on.
* ``/console/webhooks``: the tenant's endpoints (added here too, the secret shown once) and dead letters;
  ``/console/webhooks/{id}`` its delivery log with every attempt (status code, latency, error); a re-send is
  a CSRF form (``customer`` role only).
* ``/console/keys``: the tenant's API keys by prefix (``storage.tenant_keys``, hashed as the CLI stores them);
  creating one shows it once; revoking asks first. Console users manage ``client`` keys only: admin and
  auditor keys are the operator's (``smsguard key``). Both are audit events in the key's transaction.

Every read and write takes the tenant from the session: another tenant's endpoint, event or key is 404.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter, URLEncodedBody
from litestar.response import Redirect
from sqlalchemy import Engine

from smsguard import audit, batches, storage, webhooks
from smsguard.core import InputError, NotFoundError, SmsguardError
from smsguard.i18n import N_, gettext
from smsguard.webauth import http_status

if TYPE_CHECKING:  # the router (console._routes) imports this module
    from ._routes import ConsoleUI
    from ._users import ConsoleUser

PAGE = 50
LABEL_MAX = 100
CHART_DAYS = 14
CONSOLE_KEY_ROLES = ("client",)
"""What a console user may create and revoke; other roles are the operator's (``smsguard key create --role``)."""
ROTATE_GRACES = (0, 3600, 86400, 604800)
"""How long a rotated-out secret keeps signing (``webhooks.rotate_secret``' grace): the receiver's deploy window."""

CHART_GROUPS = (
    ("delivered", N_("delivered"), ("delivered",)),
    ("failed", N_("failed"), ("failed", "expired", "unknown", "rejected", "refused")),
    ("pending", N_("in progress"), ("draft", "screening", "review", "scheduled", "queued", "deferred", "submitted")),
    ("not_sent", N_("not sent"), ("cancelled", "opted_out", "capped", "invalid")),
)
"""The chart's groups of recipient states; their labels are message ids (the templates translate them)."""


class RecordsError(InputError):
    code = "records.query"


def parse_day(value: str, where: str, *, error: type[InputError] = RecordsError, code: str = "records.date"
              ) -> date | None:
    """A date field of a filter form (YYYY-MM-DD; empty: none), refused as ``error`` naming ``where``."""
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise error(gettext("not a date (YYYY-MM-DD): %(value)s", value=repr(value[:20])), where=where,
                    code=code) from None


def _cursor(value: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d{1,12})-(\d{1,9})", value.strip())
    if value.strip() and m is None:
        raise RecordsError(gettext("not a page cursor"), where="query before", code="records.cursor")
    return (int(m[1]), int(m[2])) if m else None


def record_query(ctx: batches.Context, tz: str, q: dict[str, str]) -> dict[str, Any]:
    """The search form's fields checked and turned into ``batches.search_recipients`` arguments."""
    zone = ZoneInfo(tz)
    args: dict[str, Any] = {}
    phone = q["phone"].strip()
    if phone:
        try:
            p = batches.parse_phone(phone)
        except batches.InvalidPhone:
            raise RecordsError(gettext("give a full mobile number, e.g. 13812345678 (a number is found by its keyed "
                                       "hash, so part of one cannot be searched)"), where="query phone",
                               code="records.phone") from None
        args["phone_hash"] = ctx.vault.hash(p.e164)
        q["masked"] = p.masked
    since, until = parse_day(q["since"], "query since"), parse_day(q["until"], "query until")
    if since and until and until < since:
        raise RecordsError(gettext("the end date is before the start date"), where="query until",
                           code="records.range")
    if since:
        args["since"] = datetime.combine(since, time(), zone)
    if until:
        args["until"] = datetime.combine(until + timedelta(days=1), time(), zone)
    if q["state"]:
        if q["state"] not in batches.RECORD_STATES:
            raise RecordsError(gettext("state must be one of %(states)s", states=", ".join(batches.RECORD_STATES)),
                               where="query state", code="records.state")
        args["state"] = q["state"]
    if q["batch"].strip():
        if not q["batch"].strip().isdigit() or len(q["batch"].strip()) > 12:
            raise RecordsError(gettext("a batch is given by its number"), where="query batch", code="records.batch")
        args["batch_id"] = int(q["batch"])
    args["before"] = _cursor(q["before"])
    return args


def _bars(buckets: list[tuple[str, str, dict[str, int]]], *, height: float = 120.0, bar: int = 22,
          gap: int = 8, every: int = 2, from_end: bool = False) -> dict[str, Any]:
    """Stacked bars' geometry for ``[(key, short label, {group: count, "cost": micros}), …]``; every
    ``every``-th bar is labelled, counted from the last one (today) when ``from_end``."""
    top = max([sum(c[g] for g, _, _ in CHART_GROUPS) for _, _, c in buckets] + [1])
    bars = []
    for i, (key, short, c) in enumerate(buckets):
        y, parts = height, []
        for g, label, _ in CHART_GROUPS:
            if c[g]:
                h = c[g] / top * height
                y -= h
                parts.append({"group": g, "label": label, "n": c[g], "y": round(y, 1), "h": round(max(h, 1), 1)})
        total = sum(c[g] for g, _, _ in CHART_GROUPS)
        labelled = (len(buckets) - 1 - i if from_end else i) % every == 0
        bars.append({"day": key, "short": short if labelled else "", "x": i * (bar + gap), "total": total,
                     "parts": parts, "cost": c["cost"] / 1_000_000, **{g: c[g] for g, _, _ in CHART_GROUPS}})
    return {"bars": bars, "groups": CHART_GROUPS, "top": top, "height": height, "bar": bar,
            "width": len(buckets) * (bar + gap), "total": sum(b["total"] for b in bars),
            "cost": sum(b["cost"] for b in bars)}


def _empty() -> dict[str, int]:
    return {**dict.fromkeys((g for g, _, _ in CHART_GROUPS), 0), "cost": 0}


def daily_chart(ctx: batches.Context, tenant_id: int, tz: str, *, days: int = CHART_DAYS,
                today: date | None = None, hourly: bool = False) -> dict[str, Any]:
    """Recipients per day (the tenant's zone) of the last ``days`` days by outcome, with their cost (what was
    handed to carriers), as a stacked SVG bar chart (server-rendered: no script, no CDN); ``hourly`` adds
    today's 24 hours as a second chart."""
    zone = ZoneInfo(tz)
    today = today or datetime.now(zone).date()
    first = today - timedelta(days=days - 1)
    group_of = {s: g for g, _, states in CHART_GROUPS for s in states}
    per_day = {first + timedelta(days=i): _empty() for i in range(days)}
    per_hour = {h: _empty() for h in range(24)}
    for at, state, n, cost in batches.daily_states(ctx, tenant_id, since=datetime.combine(first, time(), zone)):
        local = at.astimezone(zone)
        g = group_of.get(state, "pending")
        for bucket in (per_day.get(local.date()), per_hour[local.hour] if local.date() == today else None):
            if bucket is not None:
                bucket[g] += n
                bucket["cost"] += cost
    out = _bars([(d.isoformat(), f"{d:%m-%d}", c) for d, c in sorted(per_day.items())], from_end=True)
    if hourly:
        out["hours"] = _bars([(f"{today.isoformat()}T{h:02d}", f"{h:02d}", c) for h, c in per_hour.items()],
                             bar=12, gap=4, every=3)
        out["failures"] = batches.failure_codes(ctx, tenant_id, since=datetime.combine(first, time(), zone))
    return out


def page_handlers(
    ui: ConsoleUI, need: Callable[..., Awaitable[ConsoleUser]], actor: Callable[[ConsoleUser], str]
) -> list[Any]:
    def db() -> Engine:
        return ui.runtime.db

    # ---- send records ---------------------------------------------------------------------------
    @get("/records", include_in_schema=False)
    async def records_page(request: Request, phone: FromQuery[str] = "", since: FromQuery[str] = "",
                           until: FromQuery[str] = "",
                           wanted: Annotated[str, QueryParameter(name="state")] = "", batch: FromQuery[str] = "",
                           before: FromQuery[str] = "") -> Response:
        u = await need(request)
        q = {"phone": phone[:40], "since": since[:20], "until": until[:20], "state": wanted[:16],
             "batch": batch[:20], "before": before[:30]}
        try:
            args = record_query(ui.ctx, u.time_zone, q)
            result = await ui.call(batches.search_recipients, u.tenant_id, limit=PAGE, **args)
        except SmsguardError as e:
            if http_status(e) >= 500:
                raise
            return ui.render(request, "records.html", status=400, q=q, rows=[], next_url=None,
                             error=e.message, error_where=e.where, states=batches.RECORD_STATES)
        next_url = None
        if result["next_before"]:
            bid, seq = result["next_before"]
            keep = {k: v for k, v in q.items() if v and k not in ("before", "masked")}
            next_url = "/console/records?" + urlencode({**keep, "before": f"{bid}-{seq}"})
        return ui.render(request, "records.html", q=q, rows=result["records"], next_url=next_url, error=None,
                         error_where=None, states=batches.RECORD_STATES)

    @get("/stats", include_in_schema=False)
    async def stats_page(request: Request) -> Response:
        u = await need(request)
        chart = await ui.run(daily_chart, ui.ctx, u.tenant_id, u.time_zone, hourly=True)
        return ui.render(request, "stats.html", chart=chart)

    # ---- webhooks -------------------------------------------------------------------------------
    async def webhooks_view(request: Request, u: ConsoleUser, *, status: int = 200, created: Any = None,
                            error: str | None = None, form: dict[str, Any] | None = None) -> Response:
        eps = await ui.run(webhooks.list_endpoints, db(), u.tenant_id)
        dead = await ui.run(webhooks.list_dead_letters, db(), u.tenant_id, limit=100)
        return ui.render(request, "webhooks.html", status=status, endpoints=eps, dead=dead["deliveries"],
                         created=created, error=error, form=form or {"events": ["*"]},
                         event_types=webhooks.EVENT_TYPES)

    @get("/webhooks", include_in_schema=False)
    async def webhooks_page(request: Request) -> Response:
        u = await need(request)
        return await webhooks_view(request, u)

    @post("/webhooks", include_in_schema=False)
    async def create_webhook(request: Request) -> Response:
        """A new endpoint; its signing secret is shown on the answer page once (as ``POST /v1/webhooks``)."""
        u = await need(request, write=True)
        data = await request.form()
        form = {"url": str(data.get("url") or "").strip()[:2000],
                "description": str(data.get("description") or "").strip()[:200],
                "events": [str(e) for e in data.getall("events")] if "events" in data else []}
        try:
            ep = await ui.run(webhooks.create_endpoint, db(), u.tenant_id, url=form["url"], events=form["events"],
                              description=form["description"], actor=actor(u))
        except SmsguardError as e:
            if http_status(e) >= 500:
                raise
            where = {"$.url": gettext("Address (URL)"), "$.events": gettext("Events")}.get(
                (e.where or "").split("[")[0], "")
            return await webhooks_view(request, u, status=400, form=form,
                                       error=(f"{where}: " if where else "") + e.message)
        return await webhooks_view(request, u, status=201, created=ep)

    async def webhook_view(request: Request, u: ConsoleUser, webhook_id: int, *, status: str = "", after: int = 0,
                           code: int = 200, new_secret: str | None = None, error: str | None = None,
                           form: dict[str, Any] | None = None) -> Response:
        ep = await ui.run(webhooks.get_endpoint, db(), u.tenant_id, webhook_id)  # 404 for another tenant's
        status = status if status in webhooks.DELIVERY_STATUSES else ""
        log = await ui.run(webhooks.list_deliveries, db(), u.tenant_id, webhook_id, status=status or None,
                           after=max(after, 0), limit=PAGE)
        next_url = None
        if log["next_after"]:
            next_url = f"/console/webhooks/{webhook_id}?" + urlencode(
                {**({"status": status} if status else {}), "after": log["next_after"]})
        return ui.render(request, "webhook.html", status=code, nav="webhooks", ep=ep, deliveries=log["deliveries"],
                         wanted=status, next_url=next_url, statuses=webhooks.DELIVERY_STATUSES,
                         new_secret=new_secret, error=error, form=form or ep, event_types=webhooks.EVENT_TYPES,
                         graces=ROTATE_GRACES)

    @get("/webhooks/{webhook_id:int}", include_in_schema=False)
    async def webhook_page(request: Request, webhook_id: FromPath[int], status: FromQuery[str] = "",
                           after: FromQuery[int] = 0) -> Response:
        u = await need(request)
        return await webhook_view(request, u, webhook_id, status=status, after=after)

    @post("/webhooks/{webhook_id:int}/edit", include_in_schema=False)
    async def edit_webhook(request: Request, webhook_id: FromPath[int]) -> Response:
        """Change the URL, events, description or pause it (``webhooks.update_endpoint``, as ``PATCH``)."""
        u = await need(request, write=True)
        data = await request.form()
        form = {"url": str(data.get("url") or "").strip()[:2000],
                "description": str(data.get("description") or "").strip()[:200],
                "events": [str(e) for e in data.getall("events")] if "events" in data else [],
                "enabled": data.get("enabled") == "on"}
        try:
            await ui.run(webhooks.update_endpoint, db(), u.tenant_id, webhook_id, actor=actor(u), **form)
        except SmsguardError as e:
            if http_status(e) >= 500 or http_status(e) == 404:
                raise
            where = {"$.url": gettext("URL"), "$.events": gettext("Events")}.get((e.where or "").split("[")[0], "")
            return await webhook_view(request, u, webhook_id, code=400, form=form,
                                      error=(f"{where}: " if where else "") + e.message)
        request.session["flash"] = gettext("webhook #%(id)s saved", id=webhook_id)
        return Redirect(f"/console/webhooks/{webhook_id}", status_code=303)

    @post("/webhooks/{webhook_id:int}/rotate", include_in_schema=False)
    async def rotate_webhook(request: Request, webhook_id: FromPath[int],
                             data: URLEncodedBody[dict[str, str]]) -> Response:
        """A new signing secret, shown on the answer page once; the old one keeps signing for the grace chosen."""
        u = await need(request, write=True)
        raw = (data.get("grace") or "").strip()
        if raw not in {str(g) for g in ROTATE_GRACES}:
            raise InputError(gettext("choose how long the old secret stays valid"), where="form grace",
                             code="webhooks.grace")
        ep = await ui.run(webhooks.rotate_secret, db(), u.tenant_id, webhook_id, grace=float(raw), actor=actor(u))
        return await webhook_view(request, u, webhook_id, new_secret=ep["secret"])

    @post("/webhooks/{webhook_id:int}/delete", include_in_schema=False)
    async def delete_webhook(request: Request, webhook_id: FromPath[int],
                             data: URLEncodedBody[dict[str, str]]) -> Response:
        u = await need(request, write=True)
        ep = await ui.run(webhooks.get_endpoint, db(), u.tenant_id, webhook_id)  # 404 for another tenant's
        if data.get("confirm") != "yes":  # without JavaScript's dialog: a page that asks first
            return ui.render(request, "confirm.html", nav="webhooks", action=f"/console/webhooks/{webhook_id}/delete",
                             title=gettext("Delete webhook #%(id)s?", id=webhook_id),
                             message=delete_webhook_message(ep), confirm=gettext("Delete the webhook"),
                             back=f"/console/webhooks/{webhook_id}")
        out = await ui.run(webhooks.delete_endpoint, db(), u.tenant_id, webhook_id, actor=actor(u))
        request.session["flash"] = gettext("webhook #%(id)s deleted; %(n)s pending deliveries cancelled", id=webhook_id,
                                           n=out["cancelled_deliveries"])
        return Redirect("/console/webhooks", status_code=303)

    @post("/webhooks/events/{event_id:str}/resend", include_in_schema=False)
    async def resend(request: Request, event_id: FromPath[str], data: URLEncodedBody[dict[str, str]]) -> Response:
        u = await need(request, write=True)
        raw = (data.get("webhook_id") or "").strip()
        if raw and not raw.isdigit():
            raise InputError(gettext("webhook_id must be a number"), where="form webhook_id", code="webhooks.id")
        endpoint = int(raw) if raw else None
        out = await ui.run(webhooks.resend_event, db(), u.tenant_id, event_id[:40], endpoint_id=endpoint,
                           actor=actor(u))
        request.session["flash"] = gettext("event %(id)s re-sent to %(n)s webhook(s)", id=event_id,
                                           n=len(out["deliveries"]))
        back = endpoint or out["deliveries"][0]["webhook_id"]
        return Redirect(f"/console/webhooks/{back}", status_code=303)

    # ---- API keys -------------------------------------------------------------------------------
    async def keys_view(request: Request, u: Any, *, status: int = 200, new_key: str | None = None,
                        error: str | None = None, label: str = "") -> Response:
        rows = await ui.run(storage.tenant_keys, db(), u.tenant_id)
        return ui.render(request, "keys.html", status=status, rows=rows, new_key=new_key, error=error,
                         label=label, manageable=CONSOLE_KEY_ROLES)

    @get("/keys", include_in_schema=False)
    async def keys_page(request: Request) -> Response:
        u = await need(request)
        return await keys_view(request, u)

    @post("/keys", include_in_schema=False)
    async def create_key(request: Request, data: URLEncodedBody[dict[str, str]]) -> Response:
        u = await need(request, write=True)
        label = (data.get("label") or "").strip()
        if not label or len(label) > LABEL_MAX or any(ord(ch) < 32 for ch in label):
            return await keys_view(request, u, status=400, label=label[:LABEL_MAX],
                                   error=gettext("give the key a label (1–%(max)s characters)", max=LABEL_MAX))

        def record(conn: Any, key_id: int, listing: Any) -> None:
            audit.append(conn, event_type="api_key.created", actor=actor(u), tenant_id=u.tenant_id,
                         subject=f"api_key:{key_id}",
                         payload={"key_id": key_id, "prefix": listing.prefix, "label": label, "role": listing.role,
                                  "via": "console"})

        key, _ = await ui.run(storage.create_key, db(), u.tenant, label=label, role="client", within=record)
        return await keys_view(request, u, status=201, new_key=key)

    @post("/keys/{key_id:int}/revoke", include_in_schema=False)
    async def revoke_key(request: Request, key_id: FromPath[int], data: URLEncodedBody[dict[str, str]]) -> Response:
        u = await need(request, write=True)
        rows = await ui.run(storage.tenant_keys, db(), u.tenant_id)
        k = next((r for r in rows if r["id"] == key_id), None)
        if k is None:
            raise NotFoundError(gettext("no key %(id)s", id=key_id), where="path key_id", code="key.not_found")
        if data.get("confirm") != "yes":  # without JavaScript's dialog: a page that asks first
            return ui.render(request, "confirm.html", nav="keys", action=f"/console/keys/{key_id}/revoke",
                             title=gettext("Revoke key %(prefix)s… (%(label)s)?", prefix=k["prefix"], label=k["label"]),
                             message=revoke_message(k), confirm=gettext("Revoke"), back="/console/keys")

        def record(conn: Any, key: dict[str, Any]) -> None:
            audit.append(conn, event_type="api_key.revoked", actor=actor(u), tenant_id=u.tenant_id,
                         subject=f"api_key:{key_id}",
                         payload={"key_id": key_id, "prefix": key["prefix"], "label": key["label"], "via": "console"})

        await ui.run(storage.revoke_tenant_key, db(), u.tenant_id, key_id, roles=CONSOLE_KEY_ROLES, within=record)
        request.session["flash"] = gettext("key %(prefix)s… revoked", prefix=k["prefix"])
        return Redirect("/console/keys", status_code=303)

    return [records_page, stats_page, webhooks_page, create_webhook, webhook_page, edit_webhook, rotate_webhook,
            delete_webhook, resend, keys_page, create_key, revoke_key]


def delete_webhook_message(ep: dict[str, Any]) -> str:
    return gettext("Nothing more is sent to %(url)s; deliveries still waiting for a retry are cancelled. Its delivery "
                   "log stays readable. This cannot be undone.", url=ep["url"])


def revoke_message(k: dict[str, Any]) -> str:
    return gettext("Programs using %(prefix)s… can no longer call the API (requests with this key are refused once "
                   "every server's key cache has expired, SMSGUARD_KEY_CACHE_TTL, 10 s by default). This cannot be "
                   "undone.", prefix=k["prefix"])


__all__ = ["daily_chart", "page_handlers", "record_query"]
