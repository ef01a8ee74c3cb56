"""Batch routes (issue 7): templates, contact lists, batches and their reports, opt-outs, complaints, MO.

All under ``/v1``, all with the API key's tenant. Numbers are answered masked (``138****1234``) only.
Handlers run the synchronous ``batches`` functions in the thread pool (SQL and Redis are sync there).

* ``POST /v1/templates`` · ``GET /v1/templates/{id}``
* ``POST /v1/contact-lists?name=…`` (body: the CSV file, UTF-8 or GBK, up to 256 MiB, raw as ``text/csv`` or
  as the multipart field ``file``, which is what ``curl -F file=@list.csv`` sends) ·
  ``GET /v1/contact-lists/{id}`` · ``GET /v1/contact-lists/{id}/rejects.csv``
* ``POST /v1/batches`` · ``GET /v1/batches/{id}`` · ``POST /v1/batches/{id}/submit`` ·
  ``POST /v1/batches/{id}/cancel`` · ``GET /v1/batches/{id}/recipients`` · ``GET /v1/batches/{id}/report.csv``
* ``POST /v1/inbound`` (MO replies: opt-out / opt-in / complaint keywords; committed before the 200)
* ``POST /v1/optouts`` · ``POST /v1/optouts/remove`` · ``POST /v1/optouts/status`` · ``POST /v1/complaints``
* ``GET /v1/budget`` · ``PUT /v1/budget`` (admin key)
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from smsguard import batches
from smsguard.core import ForbiddenError, SmsguardError

from ._batch_schemas import (
    MAX_ID,
    BatchIn,
    BatchOut,
    BudgetIn,
    BudgetOut,
    ComplaintIn,
    ComplaintOut,
    ContactListOut,
    ContactPreview,
    DeletedOut,
    InboundIn,
    InboundOut,
    MergedListOut,
    MergeIn,
    OptedIn,
    OptedOut,
    OptoutIn,
    OptoutStatus,
    RecipientPage,
    SubmitIn,
    TemplateIn,
    TemplateOut,
    TemplateVersionIn,
    TemplateVersionOut,
)
from ._idempotency import Idempotency, IdempotencyKey
from ._schemas import ErrorBody
from ._service import Service

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
T = TypeVar("T")


def _as(kind: type[T], answer: Any) -> T:
    """A ``batches`` function's dict as the route's typed answer (a field that drifted fails here, in the tests)."""
    return msgspec.convert(answer, kind)


CSV_MEDIA_TYPES = frozenset({"text/csv", "text/plain", "application/octet-stream", ""})
"""The raw bodies ``POST /v1/contact-lists`` reads as the CSV ("": no Content-Type)."""
_CSV_HOW = ("send the CSV as the body with Content-Type: text/csv (curl --data-binary @list.csv -H 'Content-Type: "
            "text/csv') or as the multipart field `file` (curl -F file=@list.csv)")


@dataclasses.dataclass
class CsvUploadOperation(Operation):
    """``POST /v1/contact-lists`` reads its body itself (streamed, up to 256 MiB, or a multipart upload), so
    litestar sees no ``data`` to document: the request body is said here (without it, ``curl -F`` users had
    nothing telling them the field name)."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING, description="The CSV, UTF-8 or GBK; a header row naming the phone "
                      "column (phone, mobile, 手机号码, …) makes the other columns template variables")
        upload = Schema(type=OpenAPIType.OBJECT, required=["file"], properties={
            "file": Schema(type=OpenAPIType.STRING, format="binary", content_media_type="text/csv",
                           description="The CSV file (UTF-8 or GBK)"),
        })
        self.request_body = RequestBody(required=True, description=f"The contact list: {_CSV_HOW}.", content={
            "text/csv": OpenAPIMediaType(schema=text),
            "multipart/form-data": OpenAPIMediaType(schema=upload),
        })


# The batches functions' keyword names that are not the API's own: an error names what the client sent.
_API_NAMES = {"phone_raw": "$.phone", "ref": "$.id", "status": "query status"}

_ERROR_TEXT = {
    400: "The request does not fit the schema or is invalid; `where` names the field",
    401: "Missing, malformed, unknown or revoked API key",
    402: "The batch would exceed the tenant's budget (budget.exceeded) or its available prepaid balance "
         "(billing.insufficient_balance, with the amounts); it is back in draft",
    403: "The key may not do this (admin routes need an admin key), or the signature is not approved "
         "(signature.not_approved)",
    404: "Not found for this key's tenant",
    409: "Not in a state that allows this (e.g. a template awaiting review, a batch already releasing), or an "
         "Idempotency-Key reused with another request (idempotency.mismatch) or still running",
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
        # Idempotency-Key on the creating POSTs
        self.idempotency = Idempotency(lambda: service.runtime.db, lambda: service.settings.test_idempotency_crash)

    async def start(self) -> None:
        self.ctx = batches.Context.of(self.service.runtime, actor="system:api")
        await anyio.to_thread.run_sync(batches.rebuild_sets, self.ctx)  # Redis opt-out sets from SQL

    async def stop(self) -> None:
        self.ctx = None  # its SQL and Redis belong to the Runtime

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert self.ctx is not None
        for name, value in kwargs.items():  # PostgreSQL text cannot hold NUL: a 400, never a 500
            values = value if isinstance(value, list) else [value]
            has_nul = any(isinstance(v, str) and "\x00" in v for v in values)
            if has_nul or (isinstance(value, dict) and any("\x00" in f"{k}{v}" for k, v in value.items())):
                where = _API_NAMES.get(name, f"$.{name}")
                raise SmsguardError("must not contain NUL (U+0000)", where=where, code="input.nul")
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
        async def create_template(request: Request, data: JSONBody[TemplateIn]) -> TemplateOut:
            return _as(TemplateOut, await api.call(batches.create_template, tid(request), name=data.name,
                                                   kind=data.kind, signature=data.signature, body=data.body,
                                                   samples=data.samples, actor=actor(request)))

        @get("/v1/templates/{template_id:int}", summary="A template and its screening status",
             responses=errors(400, 401, 404), **common)
        async def get_template(request: Request, template_id: Id) -> TemplateOut:
            return _as(TemplateOut, await api.call(batches.get_template, tid(request), template_id))

        @get("/v1/templates/{template_id:int}/versions", summary="A template's versions, newest first",
             responses=errors(400, 401, 404), **common)
        async def template_versions(request: Request, template_id: Id) -> list[TemplateVersionOut]:
            return _as(list[TemplateVersionOut], await api.call(batches.template_history, tid(request), template_id))

        @post("/v1/templates/{template_id:int}/versions", status_code=201,
              summary="Edit a template, or resubmit it after a rejection: a new version waiting for review",
              responses=errors(400, 401, 404, 409), **common)
        async def new_template_version(request: Request, template_id: Id,
                                       data: JSONBody[TemplateVersionIn]) -> TemplateVersionOut:
            return _as(TemplateVersionOut, await api.call(batches.propose_version, tid(request), template_id,
                                                          body=data.body, signature=data.signature,
                                                          actor=actor(request)))

        @post("/v1/contact-lists", status_code=201, summary="Import a CSV contact list (UTF-8 or GBK)",
              request_max_body_size=256 * 1024 * 1024, responses=errors(400, 401, 409, 413, 503),
              operation_class=CsvUploadOperation, **common)
        async def import_list(request: Request, name: FromQuery[str] = "contacts",
                              idempotency_key: IdempotencyKey = None) -> Response[ContactListOut]:
            if "\x00" in name:  # PostgreSQL text cannot hold NUL: a 400, never a 500
                raise SmsguardError("must not contain NUL (U+0000)", where="query name", code="input.nul")
            media_type = request.content_type[0]
            digest = hashlib.sha256(f"name={name}\n".encode())
            if media_type == "multipart/form-data":
                upload = await _uploaded_csv(request)
                try:
                    while chunk := await upload.read(1024 * 1024):
                        digest.update(chunk)
                    await upload.seek(0)

                    async def from_upload() -> ContactListOut:
                        return _as(ContactListOut, await api.call(batches.import_contacts, tid(request), name,
                                                                  upload.file, actor=actor(request)))

                    return await api.idempotency.run(request, idempotency_key, from_upload, body=digest.digest())
                finally:
                    await upload.close()
            if media_type not in CSV_MEDIA_TYPES:
                raise SmsguardError(f"a contact list is CSV, not {media_type}: {_CSV_HOW}", where="header Content-Type",
                                    code="input.media_type")
            spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed below
            try:
                async for part in request.stream():
                    spool.write(part)
                    digest.update(part)
                spool.seek(0)

                async def from_body() -> ContactListOut:
                    return _as(ContactListOut, await api.call(batches.import_contacts, tid(request), name, spool,
                                                              actor=actor(request)))

                return await api.idempotency.run(request, idempotency_key, from_body, body=digest.digest())
            finally:
                spool.close()

        @get("/v1/contact-lists/{list_id:int}", summary="A contact list: counts and the first rejected lines",
             responses=errors(400, 401, 404), **common)
        async def get_list(request: Request, list_id: Id) -> ContactListOut:
            return _as(ContactListOut, await api.call(batches.get_list, tid(request), list_id))

        @get("/v1/contact-lists/{list_id:int}/rejects.csv", summary="Every rejected line (invalid, duplicate)",
             media_type="text/csv", responses=errors(400, 401, 404), **common)
        async def list_rejects(request: Request, list_id: Id) -> Stream:
            await api.call(batches.get_list, tid(request), list_id, errors=0)
            return _csv_stream(api, batches.rejects_csv, tid(request), list_id, f"list-{list_id}-rejects.csv")

        @get("/v1/contact-lists/{list_id:int}/contacts", summary="The list's first contacts, numbers masked",
             responses=errors(400, 401, 404), **common)
        async def list_preview(request: Request, list_id: Id,
                               limit: Annotated[int, QueryParameter(ge=1, le=200)] = 20) -> ContactPreview:
            return _as(ContactPreview, await api.call(batches.preview_contacts, tid(request), list_id, limit=limit))

        @get("/v1/contact-lists/{list_id:int}/export.csv",
             summary="The whole list as CSV (phone, then its variable columns); numbers masked for auditor keys",
             media_type="text/csv", responses=errors(400, 401, 404, 409), **common)
        async def list_export(request: Request, list_id: Id) -> Stream:
            # the owner's writing keys see the numbers they uploaded; an auditor key reads them masked, as it
            # reads the audit log (auditor_full: as stored)
            full = request.state.key.role != "auditor"
            rows = await api.call(batches.export_contacts, tid(request), list_id, full=full, actor=actor(request))
            return _csv_rows(rows, f"list-{list_id}.csv")

        @post("/v1/contact-lists/merge", status_code=201,
              summary="Merge lists into a new one, one contact per number (opted-out numbers stay: skipped at release)",
              responses=errors(400, 401, 404, 409, 503), **common)
        async def merge_lists(request: Request, data: JSONBody[MergeIn]) -> MergedListOut:
            return _as(MergedListOut, await api.call(batches.merge_lists, tid(request), data.list_ids, data.name,
                                                     actor=actor(request)))

        @delete("/v1/contact-lists/{list_id:int}", status_code=200,
                summary="Delete a list with its contacts and error report (not one a batch was sent to)",
                responses=errors(400, 401, 404, 409), **common)
        async def delete_list(request: Request, list_id: Id) -> DeletedOut:
            await api.call(batches.delete_list, tid(request), list_id, actor=actor(request))
            return DeletedOut(id=list_id, deleted=True)

        @post("/v1/batches", status_code=201, summary="Create (and unless draft, submit) a batch",
              responses=errors(400, 401, 402, 403, 404, 409, 503), **common)
        async def create_batch(request: Request, data: JSONBody[BatchIn],
                               idempotency_key: IdempotencyKey = None) -> Response[BatchOut]:
            async def work(bind: Any) -> BatchOut:
                return _as(BatchOut, await api.call(batches.create_batch, tid(request), name=data.name,
                                      template_id=data.template_id, list_id=data.list_id, content=data.content,
                                      numbers=data.numbers, kind=data.kind, signature=data.signature,
                                      schedule_at=data.schedule_at, draft=data.draft, actor=actor(request),
                                      on_created=lambda conn, b: bind(conn, f"batch:{b['id']}")))

            async def resume(resource: str) -> BatchOut:  # "batch:<id>", made by a request that crashed
                batch_id = int(resource.split(":")[1])
                batch = await api.call(batches.get_batch, tid(request), batch_id)
                if not data.draft and batch["state"] in ("draft", "screening"):  # the crash came before its submit
                    batch = await api.call(batches.submit_batch, tid(request), batch_id, numbers=data.numbers,
                                           actor=actor(request))
                return _as(BatchOut, batch)

            return await api.idempotency.run(request, idempotency_key, work, resume=resume)

        @get("/v1/batches/{batch_id:int}", summary="A batch: state, counts per recipient status, cost estimate",
             responses=errors(400, 401, 404), **common)
        async def get_batch(request: Request, batch_id: Id) -> BatchOut:
            return _as(BatchOut, await api.call(batches.get_batch, tid(request), batch_id))

        @post("/v1/batches/{batch_id:int}/submit", status_code=200, summary="Submit a draft batch",
              responses=errors(400, 401, 402, 404, 409), **common)
        async def submit(request: Request, batch_id: Id, data: JSONBody[SubmitIn]) -> BatchOut:
            return _as(BatchOut, await api.call(batches.submit_batch, tid(request), batch_id, numbers=data.numbers,
                                                actor=actor(request)))

        @post("/v1/batches/{batch_id:int}/cancel", status_code=200, summary="Cancel a batch before hand-over",
              responses=errors(400, 401, 404, 409), **common)
        async def cancel(request: Request, batch_id: Id) -> BatchOut:
            return _as(BatchOut, await api.call(batches.cancel_batch, tid(request), batch_id, actor=actor(request)))

        @get("/v1/batches/{batch_id:int}/recipients", summary="Recipients (masked), by seq, optionally by status",
             responses=errors(400, 401, 404), **common)
        async def recipients(request: Request, batch_id: Id, status: FromQuery[str | None] = None,
                             after: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
                             limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100) -> RecipientPage:
            rows = await api.call(batches.list_recipients, tid(request), batch_id, status=status, after=after,
                                  limit=limit)
            return _as(RecipientPage, {"recipients": rows, "next_after": rows[-1]["seq"] if rows else None})

        @get("/v1/batches/{batch_id:int}/report.csv", summary="Per-recipient report (masked numbers), CSV",
             media_type="text/csv", responses=errors(400, 401, 404), **common)
        async def report(request: Request, batch_id: Id) -> Stream:
            await api.call(batches.get_batch, tid(request), batch_id)
            return _csv_stream(api, batches.report_csv, tid(request), batch_id, f"batch-{batch_id}.csv")

        @post("/v1/inbound", status_code=200, summary="An MO reply: opt-out / opt-in / complaint keywords",
              responses=errors(400, 401, 503), **common)
        async def inbound(request: Request, data: JSONBody[InboundIn]) -> InboundOut:
            _phone(data.phone)  # a bad number is named as the client sent it ($.phone), before anything runs
            return _as(InboundOut, await api.call(batches.handle_mo, phone_raw=data.phone, text=data.text,
                                                  tenant_id=tid(request), signature=data.signature, to=data.to,
                                                  gateway=data.gateway, ref=data.id, actor=actor(request)))

        @post("/v1/optouts", status_code=200, summary="Opt a number out (tenant-wide, or of one signature)",
              responses=errors(400, 401, 503), **common)
        async def optout(request: Request, data: JSONBody[OptoutIn]) -> OptedOut:
            phone = batches.parse_phone(data.phone, where="$.phone")
            await api.call(batches.opt_out, phone=phone, tenant_id=tid(request), signature=data.signature,
                           actor=actor(request))
            return OptedOut(phone=phone.masked, opted_out=True)

        @post("/v1/optouts/remove", status_code=200, summary="Opt a number back in",
              responses=errors(400, 401, 503), **common)
        async def optin(request: Request, data: JSONBody[OptoutIn]) -> OptedIn:
            phone = batches.parse_phone(data.phone, where="$.phone")
            lifted = await api.call(batches.opt_in, phone=phone, tenant_id=tid(request), signature=data.signature,
                                    actor=actor(request))
            return OptedIn(phone=phone.masked, lifted=lifted)

        @post("/v1/optouts/status", status_code=200, summary="Is a number opted out (global, tenant, signature)?",
              responses=errors(400, 401), **common)
        async def optout_status(request: Request, data: JSONBody[OptoutIn]) -> OptoutStatus:
            phone = batches.parse_phone(data.phone, where="$.phone")
            out = await api.call(batches.optout_status, phone=phone, tenant_id=tid(request), signature=data.signature)
            return _as(OptoutStatus, {"phone": phone.masked, **out})

        @post("/v1/complaints", status_code=201, summary="Record a complaint (opts the number out tenant-wide)",
              responses=errors(400, 401, 503), **common)
        async def complaint(request: Request, data: JSONBody[ComplaintIn]) -> ComplaintOut:
            phone = batches.parse_phone(data.phone, where="$.phone")
            return _as(ComplaintOut, await api.call(batches.record_complaint, phone=phone, tenant_id=tid(request),
                                                    signature=data.signature, text=data.text, source=data.source,
                                                    ref=data.id, actor=actor(request)))

        @get("/v1/budget", summary="The tenant's budget: limit, spent (reserved at release), remaining",
             responses=errors(400, 401), **common)
        async def budget(request: Request) -> BudgetOut:
            return _as(BudgetOut, await api.call(batches.get_budget, tid(request)))

        @put("/v1/budget", summary="Set the tenant's budget (admin key; null removes it)",
             responses=errors(400, 401, 403), **common)
        async def set_budget(request: Request, data: JSONBody[BudgetIn]) -> BudgetOut:
            if not request.state.key.admin:
                raise ForbiddenError("setting a budget needs an admin key", where="header Authorization",
                                     code="auth.forbidden")
            if data.limit is not None and data.limit < 0:
                raise SmsguardError("limit must not be negative", where="$.limit", code="budget.limit")
            return _as(BudgetOut, await api.call(batches.set_budget, tid(request), data.limit, actor=actor(request)))

        return [create_template, get_template, template_versions, new_template_version,
                import_list, get_list, list_rejects, list_preview, list_export, merge_lists, delete_list,
                create_batch, get_batch, submit,
                cancel, recipients, report, inbound, optout, optin, optout_status, complaint, budget, set_budget]


async def _uploaded_csv(request: Request) -> UploadFile:
    """The multipart field ``file`` as a file (litestar spools each upload to disk past 1 MiB); a field sent
    without a file name (``curl -F 'file=<list.csv'``) arrives as text and is turned back into bytes."""
    try:
        form = await request.form()
    except UnicodeDecodeError:  # a field without a file name is decoded as UTF-8 by litestar: GBK is not
        raise SmsguardError(f"the multipart field is not UTF-8 text; upload it as a file: {_CSV_HOW}",
                            where="body file", code="input.encoding") from None
    except ClientException as e:
        raise SmsguardError(f"{e.detail}: {_CSV_HOW}", where="body", code="input.multipart") from None
    uploads = form.getall("file") if "file" in form else []
    upload = uploads[0] if len(uploads) == 1 else None
    for value in form.values():  # close every upload that is not the one used
        if isinstance(value, UploadFile) and value is not upload:
            await value.close()
    if upload is None:
        found = ", ".join(f"`{k}`" for k in dict.fromkeys(form.keys())) or "no field"
        raise SmsguardError(f"expected one multipart field `file`, got {found}: {_CSV_HOW}", where="body file",
                            code="input.multipart")
    if isinstance(upload, UploadFile):
        return upload
    text = UploadFile(content_type="text/csv", filename="file")
    await text.write(str(upload).encode("utf-8"))
    await text.seek(0)
    return text


def _phone(raw: str) -> batches.Phone:
    """``batches.parse_phone``, its error naming the field the client sent (``$.phone``)."""
    try:
        return batches.parse_phone(raw)
    except SmsguardError as e:
        if e.where is None:
            e.where = "$.phone"
        raise


def _csv_stream(api: BatchApi, fn: Callable[..., Iterator[str]], tenant_id: int, ref: int, filename: str) -> Stream:
    return _csv_rows(fn(api.ctx, tenant_id, ref), filename)


def _csv_rows(it: Iterator[str], filename: str) -> Stream:
    async def chunks() -> AsyncIterator[bytes]:
        while True:
            part = await anyio.to_thread.run_sync(next, it, None)
            if part is None:
                return
            yield part.encode("utf-8")

    return Stream(chunks(), media_type="text/csv",  # litestar adds "; charset=utf-8"
                  headers={"Content-Disposition": f'attachment; filename="{filename}"'})

