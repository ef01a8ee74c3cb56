"""The customer's prepaid balance and statement pages (issue 19 point 2), read through ``smsguard.billing``:

* ``/console/balance``: balance, held (open holds) and available, the tenant's price list (carrier × kind, what
  its batches are estimated and held at), and a warning when available is under the tenant's low-balance
  threshold (the one ``billing`` alerts with: its audit event and the ``budget.low`` webhook).
* ``/console/statement``: the ledger's entries, oldest first, filtered by a date range (the tenant's zone, end
  day included) and an entry type, paged by a cursor (the last entry's id); ``/console/statement.csv`` the same
  filter as a download, every page of it, free-text cells neutralized as the audit export does.

The navigation shows the available balance (``balance_badge``). Every read takes the tenant from the session.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.params import FromQuery
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from smsguard import audit, batches, billing
from smsguard.core import InputError, SmsguardError
from smsguard.i18n import _
from smsguard.webauth import http_status

from ._pages import parse_day

if TYPE_CHECKING:  # the router (console._routes) imports this module
    from ._routes import ConsoleUI
    from ._users import ConsoleUser

log = logging.getLogger("smsguard.console")
PAGE = 50
CSV_PAGE = 1000
CSV_COLUMNS = (
    "id",
    "time",
    "type",
    "amount",
    "balance_change",
    "balance_after",
    "held_after",
    "available_after",
    "batch",
    "quantity",
    "reference",
    "memo",
)


class StatementError(InputError):
    code = "statement.query"


def is_low(b: dict[str, Any]) -> bool:
    """Available under the threshold: the same comparison ``billing`` alerts on (``available < low_balance``)."""
    return (
        bool(b.get("prepaid"))
        and b.get("low_balance") is not None
        and (Decimal(b["available"]) < Decimal(b["low_balance"]))
    )


def statement_query(tz: str, q: dict[str, str]) -> dict[str, Any]:
    """The filter form's fields checked and turned into ``billing.statement`` arguments."""
    zone = ZoneInfo(tz)
    since = parse_day(q["since"], "query since", error=StatementError, code="statement.date")
    until = parse_day(q["until"], "query until", error=StatementError, code="statement.date")
    if since and until and until < since:
        raise StatementError(_("the end date is before the start date"), where="query until", code="statement.range")
    args: dict[str, Any] = {}
    if since:
        args["since"] = datetime.combine(since, time(), zone)
    if until:
        args["until"] = datetime.combine(until + timedelta(days=1), time(), zone)
    if q["kind"]:
        if q["kind"] not in billing.ENTRY_KINDS:
            raise StatementError(
                _("type must be one of %(kinds)s", kinds=", ".join(billing.ENTRY_KINDS)),
                where="query kind",
                code="statement.kind",
            )
        args["kinds"] = (q["kind"],)
    after = q["after"].strip()
    if after and (not after.isdigit() or len(after) > 12):
        raise StatementError(_("not a page cursor"), where="query after", code="statement.cursor")
    args["after"] = int(after) if after else 0
    return args


def batch_of(hold_ref: str | None) -> int | None:
    """``batch:7`` → 7 (the holds the batches feature takes); None for anything else."""
    if hold_ref and hold_ref.startswith("batch:") and hold_ref[6:].isdigit():
        return int(hold_ref[6:])
    return None


def statement_csv(db: Any, tenant_id: int, tz: str, args: dict[str, Any], currency: str) -> Iterator[str]:
    """Every entry the filter matches, as CSV chunks (one per page of the ledger: constant memory)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow((*CSV_COLUMNS[:3], f"amount ({currency})", *CSV_COLUMNS[4:]))
    after = args.get("after", 0)
    while True:
        page = billing.statement(db, tenant_id, **{**args, "after": after}, limit=CSV_PAGE, currency=currency)
        for e in page["items"]:
            at = datetime.fromisoformat(e["created_at"]).astimezone(ZoneInfo(tz))
            # amounts are ours (money()); what a person typed (reference, memo) could be a formula
            w.writerow(
                (
                    e["id"],
                    at.isoformat(timespec="seconds"),
                    e["kind"],
                    e["amount"],
                    e["balance_change"],
                    e["balance_after"],
                    e["held_after"],
                    e["available_after"],
                    audit.neutralize(e["hold"] or ""),
                    "" if e["quantity"] is None else e["quantity"],
                    audit.neutralize(e["reference"] or ""),
                    audit.neutralize(e["memo"] or ""),
                )
            )
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if page["next_after"] is None:
            return
        after = page["next_after"]


def balance_handlers(
    ui: ConsoleUI, need: Callable[..., Awaitable[ConsoleUser]], actor: Callable[[ConsoleUser], str]
) -> list[Any]:
    def db() -> Engine:
        return ui.runtime.db

    def currency() -> str:
        return ui.ctx.policy.prices.currency

    def badge(user: Any) -> dict[str, Any] | None:
        """The navigation's figure. Read while the page renders (two indexed lookups of one tenant), so every
        page shows the balance as it is now; None when not signed in or not prepaid."""
        if user is None or ui._ctx is None:
            return None
        try:
            b = billing.get_balance(db(), user.tenant_id, currency=currency())
        except SQLAlchemyError:  # the figure is a courtesy: it must never turn a page (or the error page) into a 500
            log.warning("balance figure of tenant %s not read", user.tenant_id, exc_info=True)
            return None
        return {"available": b["available"], "low": is_low(b)} if b["prepaid"] else None

    ui.templates.engine.globals["balance_badge"] = badge

    @get("/balance", include_in_schema=False)
    async def balance_page(request: Request) -> Response:
        u = await need(request)
        b = await ui.run(billing.get_balance, db(), u.tenant_id, currency=currency())
        prices = await ui.run(
            billing.list_prices, db(), u.tenant_id, batches.policy_prices(ui.ctx), currency=currency()
        )
        return ui.render(
            request, "balance.html", b=b, low=is_low(b), prices=prices, kinds=billing.KINDS, carriers=billing.CARRIERS
        )

    @get("/statement", include_in_schema=False)
    async def statement_page(
        request: Request,
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
        kind: FromQuery[str] = "",
        after: FromQuery[str] = "",
    ) -> Response:
        u = await need(request)
        q = {"since": since[:20], "until": until[:20], "kind": kind[:16], "after": after[:20]}
        keep = {k: v for k, v in q.items() if v and k != "after"}
        csv_url = "/console/statement.csv" + (f"?{urlencode(keep)}" if keep else "")
        try:
            args = statement_query(u.time_zone, q)
            result = await ui.run(billing.statement, db(), u.tenant_id, limit=PAGE, currency=currency(), **args)
        except SmsguardError as e:
            if http_status(e) >= 500:
                raise
            return ui.render(
                request,
                "statement.html",
                status=400,
                q=q,
                rows=[],
                next_url=None,
                csv_url=csv_url,
                error=e.message,
                error_where=e.where,
                kinds=billing.ENTRY_KINDS,
                currency=currency(),
            )
        rows = [{**e, "batch_id": batch_of(e["hold"])} for e in result["items"]]
        next_url = None
        if result["next_after"] is not None:
            next_url = "/console/statement?" + urlencode({**keep, "after": result["next_after"]})
        return ui.render(
            request,
            "statement.html",
            q=q,
            rows=rows,
            next_url=next_url,
            csv_url=csv_url,
            error=None,
            error_where=None,
            kinds=billing.ENTRY_KINDS,
            currency=result["currency"],
        )

    @get("/statement.csv", include_in_schema=False)
    async def statement_download(
        request: Request, since: FromQuery[str] = "", until: FromQuery[str] = "", kind: FromQuery[str] = ""
    ) -> Response:
        u = await need(request)
        args = statement_query(u.time_zone, {"since": since[:20], "until": until[:20], "kind": kind[:16], "after": ""})
        tenant_id, tz, cur = u.tenant_id, u.time_zone, currency()
        name = "statement" + "".join(f"-{v}" for v in (since[:10], until[:10], kind[:12]) if v) + ".csv"
        return ui.csv(lambda ctx, t, _ref: statement_csv(ctx.db, t, tz, args, cur), tenant_id, 0, name)

    return [balance_page, statement_page, statement_download]


__all__ = ["balance_handlers", "is_low", "statement_csv", "statement_query"]
