"""Anti-pumping at the API edge: the guard of a running app, the one-line check for sending routes, the 429
answer of a refusal, and the operators' routes (admin keys).

For a sending route (``POST /v1/messages``, ``POST /v1/verify``), one line before anything is sent::

    await pumping.enforce(request, phone=data.to, signature=data.signature, kind="verification")

It raises ``PumpingRefused`` (a ``LimitError``), which the app answers 429 ``{"code", "message", "where"}`` with
``Retry-After`` when throttled (``where`` is ``$.to`` unless told otherwise). A handler may take the guard as
the ``pumping`` dependency (``pumping: PumpingApi``) instead of closing over it, and ``refusal(decision)`` builds
the same 429 ``Response`` without raising.

Routes (admin keys; rules are service-wide, except that an admin names only its own tenant as a subject):

* ``GET /v1/admin/pumping/rules`` · ``POST /v1/admin/pumping/allow`` · ``POST /v1/admin/pumping/block`` ·
  ``POST /v1/admin/pumping/lift``
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, post
from litestar.di import Provide
from litestar.params import FromQuery, JSONBody, QueryParameter

from smsguard import messages
from smsguard.core import InputError, NotFoundError, SmsguardError
from smsguard.pumping import Decision, PumpingGuard

from ._batch_schemas import Time, _Out
from ._batches import _as, errors
from ._service import Service

Scope = Literal["number", "prefix", "tenant", "ip"]
Value = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class RuleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    scope: Scope
    value: Value
    note: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    seconds: Annotated[int, msgspec.Meta(ge=1, le=10 * 365 * 86400)] | None = None


class LiftIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    scope: Scope | None = None
    value: Value | None = None
    rule_id: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None
    allow_too: bool = False


class RuleOut(_Out):
    """An allow-list entry or block (the subject's keyed hash is not shown: ``label`` says what it is)."""

    id: int
    scope: Scope
    label: str
    action: Literal["allow", "block"]  # pumping.ACTIONS
    code: str
    source: str  # who made it: an operator, or one of the guard's automatic rules
    tenant_id: int | None
    note: str | None
    actor: str
    created_at: Time
    expires_at: Time | None
    lifted_at: Time | None


class RuleList(_Out):
    rules: list[RuleOut]


class Lifted(_Out):
    lifted: list[RuleOut]


def refusal(decision: Decision, *, phone_where: str = "$.to") -> Response[dict[str, Any]]:
    """A refused decision as the API's 429 answer: ``{"code", "message", "where"}``, ``Retry-After`` when
    throttled."""
    err = decision.error(phone_where=phone_where)
    headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after is not None else None
    return Response(err.to_dict(), status_code=429, headers=headers)


def client_ip(request: Request) -> str | None:
    """The peer's address (behind nginx, the app runs with the proxy's forwarded-for handling)."""
    return request.client.host if request.client else None


class PumpingApi:
    """The guard of a running app, built on start from the Service's runtime."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.guard: PumpingGuard | None = None

    async def start(self) -> None:
        rt = self.service.runtime
        self.guard = PumpingGuard(db=rt.db, redis=rt.redis, vault=rt.vault, settings=rt.settings)
        messages.add_verification_listener(self._on_verification)  # codes sent / verified: the conversion

    async def stop(self) -> None:
        messages.remove_verification_listener(self._on_verification)
        self.guard = None

    def _on_verification(self, event: messages.VerificationEvent) -> None:
        """Conversion for the low-conversion rule (after the commit, in the request's worker thread)."""
        guard = self.guard
        if guard is None:
            return
        if event.event == "sent":
            guard.record_sent(event.tenant_id, event.phone, event.signature)
        elif event.event == "verified":
            guard.record_verified(event.tenant_id, event.phone, event.signature)

    def _guard(self) -> PumpingGuard:
        assert self.guard is not None, "PumpingApi.start() first"
        return self.guard

    async def check(self, request: Request, *, phone: str, signature: str = "", kind: str = "verification",
                    ip: str | None = None, tenant_id: int | None = None) -> Decision:
        """The guard's decision for one message of the key's tenant (counted when allowed)."""
        tid = request.state.key.tenant_id if tenant_id is None else tenant_id
        guard = self._guard()
        return await anyio.to_thread.run_sync(
            lambda: guard.check(tid, phone, signature, ip if ip is not None else client_ip(request), kind))

    async def enforce(self, request: Request, *, phone: str, signature: str = "", kind: str = "verification",
                      ip: str | None = None, phone_where: str = "$.to", tenant_id: int | None = None) -> Decision:
        """``check``, raising ``PumpingRefused`` (429) unless allowed."""
        decision = await self.check(request, phone=phone, signature=signature, kind=kind, ip=ip, tenant_id=tenant_id)
        decision.raise_if_refused(phone_where=phone_where)
        return decision

    async def record_sent(self, tenant_id: int, phone: str, signature: str = "") -> None:
        await anyio.to_thread.run_sync(lambda: self._guard().record_sent(tenant_id, phone, signature))

    async def record_verified(self, tenant_id: int, phone: str, signature: str = "") -> None:
        await anyio.to_thread.run_sync(lambda: self._guard().record_verified(tenant_id, phone, signature))

    def dependency(self) -> dict[str, Provide]:
        """``{"pumping": Provide(...)}`` for the app's ``dependencies``: handlers may ask for ``pumping``."""
        return {"pumping": Provide(lambda: self, sync_to_thread=False)}

    def handlers(self, guard: Any, security: Any) -> list[Any]:
        api = self
        common: dict[str, Any] = {"guards": [guard], "security": security, "tags": ["anti-pumping"]}

        def actor(request: Request) -> str:
            return f"key:{request.state.key.prefix}"

        def own_tenant(request: Request, scope: str | None, value: str | None, where: str) -> None:
            if scope == "tenant" and value is not None and value.strip() != str(request.state.key.tenant_id):
                raise NotFoundError("no such tenant", where=where, code="tenant.not_found")

        async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

        async def add_rule(request: Request, data: RuleIn, add: Any) -> RuleOut:
            """``add`` (the guard's allow or block) for the body's subject, as the admin key's actor."""
            own_tenant(request, data.scope, data.value, "$.value")
            rule = await run(_named(add), data.scope, data.value, actor=actor(request), note=data.note,
                             seconds=data.seconds)
            return _as(RuleOut, rule.to_dict())

        @get("/v1/admin/pumping/rules", summary="Anti-pumping allow-list entries and blocks in force (admin key)",
             responses=errors(400, 401, 403, 503), **common)
        async def rules(request: Request,
                        rule_scope: Annotated[Scope | None, QueryParameter(query="scope")] = None,
                        action: FromQuery[Literal["allow", "block"] | None] = None,
                        include_lifted: FromQuery[bool] = False) -> RuleList:
            found = await run(api._guard().rules, scope=rule_scope, action=action, include_lifted=include_lifted)
            return _as(RuleList, {"rules": [r.to_dict() for r in found]})

        @post("/v1/admin/pumping/allow", status_code=201, summary="Allow-list a number, prefix, tenant or IP",
              responses=errors(400, 401, 403, 404, 503), **common)
        async def allow(request: Request, data: JSONBody[RuleIn]) -> RuleOut:
            return await add_rule(request, data, api._guard().allow)

        @post("/v1/admin/pumping/block", status_code=201, summary="Block a number, prefix, tenant or IP (429)",
              responses=errors(400, 401, 403, 404, 503), **common)
        async def block(request: Request, data: JSONBody[RuleIn]) -> RuleOut:
            return await add_rule(request, data, api._guard().block)

        @post("/v1/admin/pumping/lift", status_code=200, summary="Lift the blocks on a subject, or one rule by id",
              responses=errors(400, 401, 403, 404, 503), **common)
        async def lift(request: Request, data: JSONBody[LiftIn]) -> Lifted:
            if data.rule_id is None and (data.scope is None or data.value is None):
                raise InputError("give scope and value, or rule_id", where="$", code="pumping.lift")
            own_tenant(request, data.scope, data.value, "$.value")
            lifted = await run(_named(api._guard().lift), data.scope, data.value, rule_id=data.rule_id,
                               actor=actor(request), allow_too=data.allow_too)
            return _as(Lifted, {"lifted": [r.to_dict() for r in lifted]})

        return [rules, allow, block, lift]


def _named(fn: Any) -> Any:
    """``fn`` with a subject error naming the body's field (``$.value``) rather than the guard's argument."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SmsguardError as e:  # a bad number, prefix or address: named as the body's field
            if e.where in (None, "subject", "phone"):
                e.where = "$.value"
            raise

    return call
