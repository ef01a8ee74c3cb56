"""Batch routes (issue 7): templates, contact lists, batches and their reports, opt-outs, complaints, MO.

All under ``/v1``, all with the API key's tenant. Numbers are answered masked (``138****1234``) only.
Handlers run the synchronous ``batches`` functions in the thread pool (SQL and Redis are sync there).

* ``POST /v1/templates`` · ``GET /v1/templates/{id}``
* ``POST /v1/contact-lists?name=…`` (body: the CSV file, UTF-8 or GBK, up to 256 MiB) ·
  ``GET /v1/contact-lists/{id}`` · ``GET /v1/contact-lists/{id}/rejects.csv``
* ``POST /v1/batches`` · ``GET /v1/batches/{id}`` · ``POST /v1/batches/{id}/submit`` ·
  ``POST /v1/batches/{id}/cancel`` · ``GET /v1/batches/{id}/recipients`` · ``GET /v1/batches/{id}/report.csv``
* ``POST /v1/inbound`` (MO replies: opt-out / opt-in / complaint keywords; committed before the 200)
* ``POST /v1/optouts`` · ``POST /v1/optouts/remove`` · ``POST /v1/optouts/status`` · ``POST /v1/complaints``
* ``GET /v1/budget`` · ``PUT /v1/budget`` (admin key)
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

import batches
from engine import SmsguardError

from ._schemas import ErrorBody
from ._service import Forbidden, Service

Kind = Literal["verification", "notification", "marketing"]
MAX_ID = 2**31 - 1  # ids are SQL INTEGER: larger path values are a 400, not a driver overflow
Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]


class TemplateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    kind: Kind
    signature: str
    body: str
    samples: dict[str, str] = {}


BodyId = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
Short = Annotated[str, msgspec.Meta(max_length=100)]


class BatchIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str = ""
    template_id: BodyId | None = None
    list_id: BodyId | None = None
    content: str | None = None
    numbers: list[str] | None = None
    kind: Kind | None = None
    signature: str | None = None
    schedule_at: datetime | None = None
    draft: bool = False


class SubmitIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    numbers: list[str] | None = None


class InboundIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    phone: str
    text: str
    to: str = ""
    signature: Short | None = None
    gateway: Short = "api"
    id: Short | None = None


class OptoutIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    phone: str
    signature: Annotated[str, msgspec.Meta(max_length=32)] = ""


class ComplaintIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    phone: str
    signature: Annotated[str, msgspec.Meta(max_length=32)] = ""
    text: str = ""
    source: Annotated[str, msgspec.Meta(max_length=16)] = "api"
    id: Short | None = None


class BudgetIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    limit: float | None


_ERROR_TEXT = {
    400: "The request does not fit the schema or is invalid; `where` names the field",
    401: "Missing, malformed, unknown or revoked API key",
    402: "The batch would exceed the tenant's budget (budget.exceeded); it is back in draft",
    403: "The key may not do this (admin routes need an admin key)",
    404: "Not found for this key's tenant",
    409: "Not in a state that allows this (e.g. a template awaiting review, a batch already releasing)",
    413: "Request body too large",
    503: "Redis or the database is unreachable",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    return {c: ResponseSpec(data_container=ErrorBody, description=_ERROR_TEXT[c], generate_examples=False)
            for c in codes}


class BatchApi:
    """Holds the batches Context of a running app (built on start, from the Service's SQL and Redis)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.ctx: batches.Context | None = None

    async def start(self) -> None:
        import redis

        s = self.service
        client = redis.Redis.from_url(s._redis_location.url, socket_timeout=30, socket_connect_timeout=5)
        vault = await anyio.to_thread.run_sync(batches.vault_for, s.settings.data_dir)
        self.ctx = batches.Context(db=s.db, redis=client, vault=vault, namespace=s.settings.redis_namespace,
                                   screening=s.engine, actor="system:api")
        await anyio.to_thread.run_sync(batches.rebuild_sets, self.ctx)  # Redis opt-out sets from SQL

    async def stop(self) -> None:
        if self.ctx is not None:
            self.ctx.redis.close()

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert self.ctx is not None
        for name, value in kwargs.items():  # PostgreSQL text cannot hold NUL: a 400, never a 500
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and "\x00" in v for v in values):
                raise SmsguardError("must not contain NUL (U+0000)", where=f"$.{name}", code="input.nul")
            if isinstance(value, dict) and any("\x00" in f"{k}{v}" for k, v in value.items()):
                raise SmsguardError("must not contain NUL (U+0000)", where=f"$.{name}", code="input.nul")
        return await anyio.to_thread.run_sync(lambda: fn(self.ctx, *args, **kwargs))

    def handlers(self, guard: Any, security: Any) -> list[Any]:
        api = self
        common: dict[str, Any] = {"guards": [guard], "security": security, "tags": ["batches"]}

        def actor(request: Request) -> str:
            return f"key:{request.state.key.prefix}"

        def tid(request: Request) -> int:
            return request.state.key.tenant_id

        @post("/v1/templates", status_code=201, summary="Create a template (screened now)",
              responses=errors(400, 401, 503), **common)
        async def create_template(request: Request, data: JSONBody[TemplateIn]) -> dict[str, Any]:
            return await api.call(batches.create_template, tid(request), name=data.name, kind=data.kind,
                                  signature=data.signature, body=data.body, samples=data.samples,
                                  actor=actor(request))

        @get("/v1/templates/{template_id:int}", summary="A template and its screening status",
             responses=errors(400, 401, 404), **common)
        async def get_template(request: Request, template_id: Id) -> dict[str, Any]:
            return await api.call(batches.get_template, tid(request), template_id)

        @post("/v1/contact-lists", status_code=201, summary="Import a CSV contact list (UTF-8 or GBK)",
              request_max_body_size=256 * 1024 * 1024, responses=errors(400, 401, 413, 503), **common)
        async def import_list(request: Request, name: FromQuery[str] = "contacts") -> dict[str, Any]:
            spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed below
            try:
                async for part in request.stream():
                    spool.write(part)
                spool.seek(0)
                return await api.call(batches.import_contacts, tid(request), name, spool, actor=actor(request))
            finally:
                spool.close()

        @get("/v1/contact-lists/{list_id:int}", summary="A contact list: counts and the first rejected lines",
             responses=errors(400, 401, 404), **common)
        async def get_list(request: Request, list_id: Id) -> dict[str, Any]:
            return await api.call(batches.get_list, tid(request), list_id)

        @get("/v1/contact-lists/{list_id:int}/rejects.csv", summary="Every rejected line (invalid, duplicate)",
             media_type="text/csv", responses=errors(400, 401, 404), **common)
        async def list_rejects(request: Request, list_id: Id) -> Stream:
            await api.call(batches.get_list, tid(request), list_id, errors=0)
            return _csv_stream(api, batches.rejects_csv, tid(request), list_id, f"list-{list_id}-rejects.csv")

        @post("/v1/batches", status_code=201, summary="Create (and unless draft, submit) a batch",
              responses=errors(400, 401, 402, 404, 409, 503), **common)
        async def create_batch(request: Request, data: JSONBody[BatchIn]) -> dict[str, Any]:
            return await api.call(batches.create_batch, tid(request), name=data.name, template_id=data.template_id,
                                  list_id=data.list_id, content=data.content, numbers=data.numbers, kind=data.kind,
                                  signature=data.signature, schedule_at=data.schedule_at, draft=data.draft,
                                  actor=actor(request))

        @get("/v1/batches/{batch_id:int}", summary="A batch: state, counts per recipient status, cost estimate",
             responses=errors(400, 401, 404), **common)
        async def get_batch(request: Request, batch_id: Id) -> dict[str, Any]:
            return await api.call(batches.get_batch, tid(request), batch_id)

        @post("/v1/batches/{batch_id:int}/submit", status_code=200, summary="Submit a draft batch",
              responses=errors(400, 401, 402, 404, 409), **common)
        async def submit(request: Request, batch_id: Id, data: JSONBody[SubmitIn]) -> dict[str, Any]:
            return await api.call(batches.submit_batch, tid(request), batch_id, numbers=data.numbers,
                                  actor=actor(request))

        @post("/v1/batches/{batch_id:int}/cancel", status_code=200, summary="Cancel a batch not yet releasing",
              responses=errors(400, 401, 404, 409), **common)
        async def cancel(request: Request, batch_id: Id) -> dict[str, Any]:
            return await api.call(batches.cancel_batch, tid(request), batch_id, actor=actor(request))

        @get("/v1/batches/{batch_id:int}/recipients", summary="Recipients (masked), by seq, optionally by status",
             responses=errors(400, 401, 404), **common)
        async def recipients(request: Request, batch_id: Id, status: FromQuery[str | None] = None,
                             after: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
                             limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100) -> dict[str, Any]:
            rows = await api.call(batches.list_recipients, tid(request), batch_id, status=status, after=after,
                                  limit=limit)
            return {"recipients": rows, "next_after": rows[-1]["seq"] if rows else None}

        @get("/v1/batches/{batch_id:int}/report.csv", summary="Per-recipient report (masked numbers), CSV",
             media_type="text/csv", responses=errors(400, 401, 404), **common)
        async def report(request: Request, batch_id: Id) -> Stream:
            await api.call(batches.get_batch, tid(request), batch_id)
            return _csv_stream(api, batches.report_csv, tid(request), batch_id, f"batch-{batch_id}.csv")

        @post("/v1/inbound", status_code=200, summary="An MO reply: opt-out / opt-in / complaint keywords",
              responses=errors(400, 401, 503), **common)
        async def inbound(request: Request, data: JSONBody[InboundIn]) -> dict[str, Any]:
            return await api.call(batches.handle_mo, phone_raw=data.phone, text=data.text, tenant_id=tid(request),
                                  signature=data.signature, to=data.to, gateway=data.gateway, ref=data.id,
                                  actor=actor(request))

        @post("/v1/optouts", status_code=200, summary="Opt a number out (tenant-wide, or of one signature)",
              responses=errors(400, 401, 503), **common)
        async def optout(request: Request, data: JSONBody[OptoutIn]) -> dict[str, Any]:
            phone = batches.parse_phone(data.phone)
            await api.call(batches.opt_out, phone=phone, tenant_id=tid(request), signature=data.signature,
                           actor=actor(request))
            return {"phone": phone.masked, "opted_out": True}

        @post("/v1/optouts/remove", status_code=200, summary="Opt a number back in",
              responses=errors(400, 401, 503), **common)
        async def optin(request: Request, data: JSONBody[OptoutIn]) -> dict[str, Any]:
            phone = batches.parse_phone(data.phone)
            lifted = await api.call(batches.opt_in, phone=phone, tenant_id=tid(request), signature=data.signature,
                                    actor=actor(request))
            return {"phone": phone.masked, "lifted": lifted}

        @post("/v1/optouts/status", status_code=200, summary="Is a number opted out (global, tenant, signature)?",
              responses=errors(400, 401), **common)
        async def optout_status(request: Request, data: JSONBody[OptoutIn]) -> dict[str, Any]:
            phone = batches.parse_phone(data.phone)
            out = await api.call(batches.optout_status, phone=phone, tenant_id=tid(request), signature=data.signature)
            return {"phone": phone.masked, **out}

        @post("/v1/complaints", status_code=201, summary="Record a complaint (opts the number out tenant-wide)",
              responses=errors(400, 401, 503), **common)
        async def complaint(request: Request, data: JSONBody[ComplaintIn]) -> dict[str, Any]:
            phone = batches.parse_phone(data.phone)
            return await api.call(batches.record_complaint, phone=phone, tenant_id=tid(request),
                                  signature=data.signature, text=data.text, source=data.source, ref=data.id,
                                  actor=actor(request))

        @get("/v1/budget", summary="The tenant's budget: limit, spent (reserved at release), remaining",
             responses=errors(400, 401), **common)
        async def budget(request: Request) -> dict[str, Any]:
            return await api.call(batches.get_budget, tid(request))

        @put("/v1/budget", summary="Set the tenant's budget (admin key; null removes it)",
             responses=errors(400, 401, 403), **common)
        async def set_budget(request: Request, data: JSONBody[BudgetIn]) -> dict[str, Any]:
            if not request.state.key.admin:
                raise Forbidden("setting a budget needs an admin key", where="header Authorization")
            if data.limit is not None and data.limit < 0:
                raise SmsguardError("limit must not be negative", where="$.limit", code="budget.limit")
            return await api.call(batches.set_budget, tid(request), data.limit, actor=actor(request))

        return [create_template, get_template, import_list, get_list, list_rejects, create_batch, get_batch, submit,
                cancel, recipients, report, inbound, optout, optin, optout_status, complaint, budget, set_budget]


def _csv_stream(api: BatchApi, fn: Callable[..., Iterator[str]], tenant_id: int, ref: int, filename: str) -> Stream:
    async def chunks() -> AsyncIterator[bytes]:
        it = fn(api.ctx, tenant_id, ref)
        while True:
            part = await anyio.to_thread.run_sync(next, it, None)
            if part is None:
                return
            yield part.encode("utf-8")

    return Stream(chunks(), media_type="text/csv",  # litestar adds "; charset=utf-8"
                  headers={"Content-Disposition": f'attachment; filename="{filename}"'})

