"""Prepaid balance routes (issue 19, point 2), all with the API key's tenant.

* ``GET /v1/balance``: balance (sum of the ledger's entries), held (open holds), available (balance − held)
* ``GET /v1/ledger?since=&until=&after=&limit=``: the statement, oldest first, paged by entry id
* ``GET /v1/prices``: the prices a batch of this tenant is estimated and held at, per kind and carrier
* ``POST /v1/balance/topups`` (admin key): credit the balance; ``reference`` makes it idempotent
* ``PUT /v1/balance/settings`` (admin key): the low-balance threshold and when messages are charged
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post, put
from litestar.params import JSONBody, QueryParameter

from smsguard import batches, billing
from smsguard.core import ForbiddenError, InputError

from ._batch_schemas import MAX_ID, Money, Time, _Out
from ._batches import _as, errors

_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d([.,]\d+)?)?([Zz]|[+-]\d\d(:?\d\d)?)?$")
"""The RFC 3339 date-time the document says (``format: date-time``); the offset is checked apart (a 400 saying so)."""
Amount = Annotated[float, msgspec.Meta(gt=0, le=1e12, description="In the policy's currency, more than 0")]
Threshold = Annotated[float, msgspec.Meta(ge=0, le=1e12, description="In the policy's currency")]
ChargeOn = Literal["handover", "delivery"]


class TopUpIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    amount: Amount
    reference: Annotated[str, msgspec.Meta(max_length=100, description="The payment's id: once per tenant")] | None \
        = None
    memo: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class SettingsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    low_balance: Threshold | None = None  # null: unchanged; 0: no alert
    charge_on: ChargeOn | None = None  # null: unchanged


class Account(_Out):
    """The prepaid account's sums; ``prepaid`` false (and the rest null) until a first top-up or setting."""

    prepaid: bool
    balance: Money | None
    held: Money | None  # the open holds' remainders
    available: Money | None  # balance − held
    low_balance: Money | None  # null: no low-balance alert
    charge_on: ChargeOn | None


class Balance(Account):
    open_holds: int
    currency: str


class Entry(_Out):
    """One ledger entry (double entry between ``debit`` and ``credit``), with the sums after it."""

    id: int
    kind: str
    amount: Money
    balance_change: Annotated[str, msgspec.Meta(description="Signed change of the balance, e.g. +100.0000")]
    debit: str
    credit: str
    balance_after: Money
    held_after: Money
    available_after: Money
    hold: str | None  # the hold's reference (a batch), for charges and releases
    quantity: int | None  # messages charged or refunded by this entry
    reference: str | None
    memo: str | None
    actor: str
    created_at: Time


class Statement(_Out):
    currency: str
    items: list[Entry]
    next_after: Annotated[int | None, msgspec.Meta(description="The `after` of the next page; null: the last one")]


class PriceList(_Out):
    currency: str
    unit: Literal["segment"]
    prices: Annotated[dict[str, dict[str, Money]], msgspec.Meta(description="kind → carrier → price per segment")]


class TopUp(Account):
    entry: Entry
    replayed: bool  # the reference was topped up before: nothing changed


def _admin(request: Request, what: str) -> None:
    if not request.state.key.admin:
        raise ForbiddenError(f"{what} needs an admin key", where="header Authorization", code="auth.forbidden")


def handlers(batch_api: Any, guard: Any, security: Any) -> list[Any]:
    common: dict[str, Any] = {"guards": [guard], "security": security, "tags": ["billing"]}

    def actor(request: Request) -> str:
        return f"key:{request.state.key.prefix}"

    def tid(request: Request) -> int:
        return request.state.key.tenant_id

    @get("/v1/balance", summary="The prepaid balance: balance, held (open holds), available = balance − held",
         responses=errors(401), **common)
    async def balance(request: Request) -> Balance:
        t = tid(request)
        return _as(Balance, await batch_api.call(
            lambda ctx: billing.get_balance(ctx.db, t, currency=ctx.policy.prices.currency)))

    @get("/v1/ledger", summary="The statement: every ledger entry, oldest first (page with after=next_after)",
         responses=errors(400, 401), **common)
    async def ledger(
        request: Request,
        since: Annotated[datetime | None, QueryParameter(description="ISO 8601 with offset; inclusive")] = None,
        until: Annotated[datetime | None, QueryParameter(description="ISO 8601 with offset; exclusive")] = None,
        after: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> Statement:
        for name, value in (("since", since), ("until", until)):
            raw = request.query_params.get(name)
            if raw is not None and not _DATE_TIME.match(raw):  # msgspec also takes a number (a Unix time)
                raise InputError(f"{name} must be an ISO 8601 date-time (e.g. 2026-12-01T00:00:00+08:00), not "
                                 f"{raw[:40]!r}", where=f"query {name}", code="billing.time")
            if value is not None and value.tzinfo is None:
                raise InputError(f"{name} needs a time zone (e.g. 2026-12-01T00:00:00+08:00)",
                                 where=f"query {name}", code="billing.time")
        t = tid(request)
        return _as(Statement, await batch_api.call(lambda ctx: billing.statement(
            ctx.db, t, since=since, until=until, after=after, limit=limit, currency=ctx.policy.prices.currency)))

    @get("/v1/prices", summary="The prices per segment this tenant's batches are estimated and held at",
         responses=errors(401), **common)
    async def prices(request: Request) -> PriceList:
        t = tid(request)
        return _as(PriceList, await batch_api.call(lambda ctx: billing.list_prices(
            ctx.db, t, batches.policy_prices(ctx), currency=ctx.policy.prices.currency)))

    @post("/v1/balance/topups", status_code=201, summary="Top up the prepaid balance (admin key)",
          responses=errors(400, 401, 403, 409, 503), **common)
    async def top_up(request: Request, data: JSONBody[TopUpIn]) -> TopUp:
        _admin(request, "a top-up")
        t, who = tid(request), actor(request)
        amount = billing.to_micros(data.amount)
        # reference and memo as keywords: the call refuses NUL in them (a 400, not a PostgreSQL error)
        return _as(TopUp, await batch_api.call(
            lambda ctx, **kw: billing.top_up(ctx.db, t, amount, actor=who, **kw),
            reference=data.reference, memo=data.memo))

    @put("/v1/balance/settings", summary="Low-balance threshold and when messages are charged (admin key)",
         responses=errors(400, 401, 403, 503), **common)
    async def settings(request: Request, data: JSONBody[SettingsIn]) -> Account:
        _admin(request, "changing billing settings")
        t, who = tid(request), actor(request)
        kw: dict[str, Any] = {"charge_on": data.charge_on}
        if data.low_balance is not None:
            kw["low_balance"] = billing.to_micros(data.low_balance, where="$.low_balance") or None
        return _as(Account, await batch_api.call(lambda ctx: billing.set_settings(ctx.db, t, actor=who, **kw)))

    return [balance, ledger, prices, top_up, settings]
