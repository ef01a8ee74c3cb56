"""Single messages and verification codes (issue 17): the routes over ``smsguard.messages``.

* ``POST /v1/messages`` (201 with the message; 202 while it waits for screening or review) ·
  ``GET /v1/messages/{id}`` · ``GET /v1/messages?phone=&from=&to=&state=&before=&limit=``
* ``POST /v1/verify`` · ``POST /v1/verify/check`` · ``GET /v1/verify/{id}`` · ``GET /v1/verify/stats`` ·
  ``GET /v1/verify/settings`` · ``PUT /v1/verify/settings`` (admin key)

The creating POSTs take ``Idempotency-Key`` (api/_idempotency.py). Numbers are answered masked only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from smsguard import batches, messages
from smsguard.core import ForbiddenError

from ._batch_schemas import MAX_ID, BodyId, Kind, Masked, Money, Time, _Out
from ._batches import BatchApi, _as
from ._idempotency import Idempotency, IdempotencyKey
from ._pumping import PumpingApi
from ._schemas import ErrorBody

_ERROR_TEXT = {
    400: "The request does not fit the schema or is invalid (a wrong code: verify.mismatch); `where` names the field",
    401: "Missing, malformed, unknown or revoked API key",
    402: "The message would exceed the tenant's budget (budget.exceeded) or its available prepaid balance "
         "(billing.insufficient_balance); nothing is sent",
    403: "The key may not do this (settings need an admin key; auditor keys only read), or the signature is "
         "not approved (signature.not_approved)",
    404: "Not found for this key's tenant (another tenant's id too)",
    409: "Idempotency-Key reused with another request (idempotency.mismatch) or still running "
         "(idempotency.in_progress); a template awaiting review; a code expired (verify.expired) or used "
         "(verify.used)",
    429: "Too many wrong codes (verify.too_many_attempts): send a new one; or the anti-pumping guard refused the "
         "number, its prefix, the tenant or the caller's address (pumping.*, with Retry-After when throttled)",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    return {c: ResponseSpec(data_container=ErrorBody, description=_ERROR_TEXT[c], generate_examples=False)
            for c in codes}

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Signature = Annotated[str, msgspec.Meta(max_length=32)]
Phone = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
State = Literal[batches.MESSAGE_STATES]  # type: ignore[valid-type]
WAITING = ("draft", "screening", "review")


class MessageIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: Phone
    template_id: BodyId | None = None
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)] | None = None
    variables: dict[Annotated[str, msgspec.Meta(max_length=32)], Annotated[str, msgspec.Meta(max_length=500)]] = {}
    signature: Signature | None = None
    kind: Kind | None = None
    schedule_at: datetime | None = None


class VerifyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    to: Phone
    template_id: BodyId | None = None
    signature: Signature | None = None


class CheckIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    to: Phone | None = None
    verification_id: BodyId | None = None


class VerifySettingsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    length: Annotated[int, msgspec.Meta(ge=4, le=8)] | None = None
    alphabet: Annotated[str, msgspec.Meta(min_length=2, max_length=62, pattern="^[0-9A-Za-z]+$")] | None = None
    ttl_seconds: Annotated[int, msgspec.Meta(ge=30, le=86_400)] | None = None
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] | None = None
    template_id: BodyId | None = None
    signature: Signature | None = None


class DeliveryReport(_Out):
    """Where the message went and what the carrier answered."""

    gateway: str | None
    carrier_status: str | None  # the carrier's receipt code
    submitted_at: Time | None
    final_at: Time | None


class MessageSummary(_Out):
    """A message as listed (``GET /v1/messages``)."""

    id: int
    state: State
    to: Masked
    kind: str | None
    signature: str | None
    template_id: int | None
    origin: str
    batch_id: int | None
    created_at: Time | None
    schedule_at: Time | None
    decision: str | None  # the screening decision: pass | review | block
    review: str | None
    detail: str | None
    carrier: str | None
    delivery: DeliveryReport
    segments: int | None
    cost: Money
    currency: str


class ReasonOut(_Out):
    """Why the screening decided as it did (start/end index the message's text)."""

    code: str | None
    category: str | None
    severity: str | None
    source: str | None
    action: str | None
    message: str | None
    term: str | None
    start: int | None
    end: int | None


class MessageOut(MessageSummary):
    """One message (``GET /v1/messages/{id}``): the summary, its text and the screening's reasons."""

    text: str | None  # null for a verification code: it is the end user's, not the tenant's
    reasons: list[ReasonOut]
    reason: str | None  # the reviewer's, on a rejection


class MessagePage(_Out):
    messages: list[MessageSummary]
    next_before: Annotated[int | None, msgspec.Meta(description="The `before` of the next page; null: the last one")]


class VerificationOut(_Out):
    id: int
    status: str
    signature: str | None
    message_id: int | None
    attempts: int
    attempts_left: int
    created_at: Time | None
    expires_at: Time | None
    verified_at: Time | None


class Checked(VerificationOut):
    verified: bool


class MessageRef(_Out):
    id: int
    state: State


class Started(VerificationOut):
    """A verification just started, with the message that carries its code."""

    message: MessageRef


class ConversionRow(_Out, kw_only=True):
    # UNSET (left out of the answer) unless grouped by it; null stays null
    signature: str | msgspec.UnsetType | None = msgspec.UNSET  # with by=signature or both
    prefix: str | msgspec.UnsetType | None = msgspec.UNSET  # with by=prefix or both
    sent: int
    verified: int
    conversion: float | None  # verified / sent; null: none sent


class Conversion(_Out):
    sent: int
    verified: int
    conversion: float | None
    rows: list[ConversionRow]


class VerifySettings(_Out):
    length: int
    alphabet: str
    ttl_seconds: int
    max_attempts: int
    template_id: int | None
    signature: str | None


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def handlers(batch_api: BatchApi, guard: Any, security: Any) -> list[Any]:
    api = batch_api
    idem = Idempotency(lambda: batch_api.service.runtime.db,
                       lambda: batch_api.service.settings.test_idempotency_crash)
    common: dict[str, Any] = {"guards": [guard], "security": security, "tags": ["messages"]}

    def actor(request: Request) -> str:
        return f"key:{request.state.key.prefix}"

    def tid(request: Request) -> int:
        return request.state.key.tenant_id

    @post("/v1/messages", status_code=201, summary="Send one SMS (screened, reviewed, capped like a batch)",
          description="A one-recipient batch: screening, review when needed, opt-outs, caps, quiet hours, budget "
          "and channels all apply. 201 with the message; 202 while it waits for review.",
          responses={202: ResponseSpec(data_container=MessageOut, description="Waiting for review"),
                     **errors(400, 401, 402, 403, 404, 409, 429)}, **common)
    async def send(request: Request, data: JSONBody[MessageIn], pumping: PumpingApi,
                   idempotency_key: IdempotencyKey = None) -> Response[MessageOut]:
        async def work(bind: Any) -> MessageOut:
            # a verification code is judged here, once (429 with the reason); the release does not count it again
            guarded = data.kind == "verification"
            if guarded:
                await pumping.enforce(request, phone=data.to, signature=data.signature or "", kind="verification")
            return _as(MessageOut, await api.call(
                messages.send_message, tid(request), to=data.to, template_id=data.template_id, text=data.text,
                variables=data.variables or None, signature=data.signature, kind=data.kind,
                schedule_at=data.schedule_at, actor=actor(request), guarded=guarded, bind=bind))

        async def resume(resource: str) -> MessageOut:  # "message:<id>", made by a request that crashed
            return _as(MessageOut, await api.call(messages.resume_message, tid(request),
                                                  int(resource.split(":")[1]), to=data.to, actor=actor(request)))

        return await idem.run(request, idempotency_key, work, resume=resume,
                              status_code=lambda m: 202 if m.state in WAITING else 201)

    @get("/v1/messages/{message_id:int}", summary="A message: state, verdict reasons, delivery report, cost",
         responses=errors(400, 401, 404), **common)
    async def get_message(request: Request, message_id: Id) -> MessageOut:
        return _as(MessageOut, await api.call(messages.get_message, tid(request), message_id))

    @get("/v1/messages", summary="Messages, newest first, by number (masked in the answer), time and state",
         responses=errors(400, 401), **common)
    async def list_messages(
        request: Request,
        phone: Annotated[str | None, QueryParameter(max_length=40)] = None,
        since: Annotated[datetime | None, QueryParameter(name="from")] = None,
        until: Annotated[datetime | None, QueryParameter(name="to")] = None,
        message_state: Annotated[State | None, QueryParameter(name="state")] = None,
        before: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> MessagePage:
        return _as(MessagePage, await api.call(messages.list_messages, tid(request), phone=phone, since=_utc(since),
                                               until=_utc(until), state=message_state, before=before, limit=limit))

    @post("/v1/verify", status_code=201, summary="Send a verification code the platform makes",
          responses=errors(400, 401, 402, 403, 404, 409, 429), **common)
    async def verify(request: Request, data: JSONBody[VerifyIn], pumping: PumpingApi,
                     idempotency_key: IdempotencyKey = None) -> Response[Started]:
        async def work(bind: Any) -> Started:
            await pumping.enforce(request, phone=data.to, signature=data.signature or "", kind="verification")
            return _as(Started, await api.call(messages.start_verification, tid(request), to=data.to,
                                               template_id=data.template_id, signature=data.signature,
                                               actor=actor(request), guarded=True, bind=bind))

        async def resume(resource: str) -> Started:  # "verification:<id>", made by a request that crashed
            return _as(Started, await api.call(messages.resume_verification, tid(request),
                                               int(resource.split(":")[1]), to=data.to, actor=actor(request)))

        return await idem.run(request, idempotency_key, work, resume=resume, status_code=201)

    @post("/v1/verify/check", status_code=200, summary="Check a code (attempt limit, single use, expiry)",
          description="400 verify.mismatch (attempts left in the message), 409 verify.expired / verify.used, "
          "429 verify.too_many_attempts, 404 verify.not_found.",
          responses=errors(400, 401, 404, 409, 429), **common)
    async def check(request: Request, data: JSONBody[CheckIn]) -> Checked:
        return _as(Checked, await api.call(messages.check_verification, tid(request), code=data.code, to=data.to,
                                           verification_id=data.verification_id, actor=actor(request)))

    @get("/v1/verify/{verification_id:int}", summary="A verification: status, attempts, expiry",
         responses=errors(400, 401, 404), **common)
    async def get_verification(request: Request, verification_id: Id) -> VerificationOut:
        return _as(VerificationOut, await api.call(messages.get_verification, tid(request), verification_id))

    @get("/v1/verify/stats", summary="Conversion (codes verified / sent) per signature and number prefix",
         responses=errors(400, 401), **common)
    async def stats(
        request: Request,
        signature: Annotated[str | None, QueryParameter(max_length=32)] = None,
        prefix: Annotated[str | None, QueryParameter(pattern="^[0-9]{7}$")] = None,
        since: Annotated[date | None, QueryParameter(name="from")] = None,
        until: Annotated[date | None, QueryParameter(name="to")] = None,
        by: Annotated[Literal["signature", "prefix", "both"], QueryParameter()] = "both",
    ) -> Conversion:
        group = ("signature", "prefix") if by == "both" else (by,)
        return _as(Conversion, await api.call(
            messages.conversion, tid(request), signature=signature, prefix=prefix,
            since=since.isoformat() if since else None, until=until.isoformat() if until else None, by=group))

    @get("/v1/verify/settings", summary="The tenant's code settings: length, alphabet, expiry, attempts, template",
         responses=errors(400, 401), **common)
    async def get_settings(request: Request) -> VerifySettings:
        return _as(VerifySettings, await api.call(messages.get_settings, tid(request)))

    @put("/v1/verify/settings", summary="Change the tenant's code settings (admin key)",
         responses=errors(400, 401, 403, 404), **common)
    async def set_settings(request: Request, data: JSONBody[VerifySettingsIn]) -> VerifySettings:
        if not request.state.key.admin:
            raise ForbiddenError("code settings need an admin key", where="header Authorization",
                                 code="auth.forbidden")
        values = {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not None}
        return _as(VerifySettings, await api.call(messages.set_settings, tid(request), actor=actor(request),
                                                  **values))

    return [send, get_message, list_messages, verify, check, get_verification, stats, get_settings, set_settings]
