"""Signature filing routes (issue 19): a tenant applies with qualification documents and reads the status.

* ``POST /v1/signatures`` (multipart: ``name``, ``type``, ``use``, one or more ``documents`` files) ·
  ``GET /v1/signatures`` · ``GET /v1/signatures/{id}`` · ``POST /v1/signatures/{id}/resubmit`` (multipart,
  optional ``documents``) · ``GET /v1/signatures/{id}/documents/{document_id}`` (the file, as an attachment)

The decision is a platform reviewer's (review UI), never the tenant's. Another tenant's id answers 404.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromQuery

from smsguard import filing
from smsguard.core import InputError

from ._batch_schemas import Time, _Out
from ._batches import Id, _as, errors
from ._service import Service

Status = Literal["pending", "approved", "rejected"]
MAX_UPLOAD = filing.MAX_DOCUMENT_BYTES * 5 + 64 * 1024  # five documents and the form fields


class DocumentOut(_Out):
    """A qualification document as stored (its bytes: ``GET .../documents/{id}``)."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class ChannelStatus(_Out):
    """The signature's registration with one channel (carrier gateway)."""

    channel: str
    status: str
    note: str | None


class SignatureOut(_Out):
    id: int
    tenant_id: int
    name: str
    type: str  # filing.KINDS
    use: Literal["self", "others"]
    status: Status
    reason: str | None  # the reviewer's, on a rejection
    created_at: Time
    decided_at: Time | None
    documents: list[DocumentOut]
    channels: list[ChannelStatus]


async def _files(request: Request) -> tuple[Any, list[tuple[str, bytes]]]:
    if not request.content_type[0].startswith("multipart/form-data"):
        raise InputError("send multipart/form-data with name, type, use and documents", where="body",
                         code="signature.form")
    form = await request.form()
    files = []
    for i, item in enumerate(form.getall("documents") if "documents" in form else []):
        if isinstance(item, str):
            raise InputError("documents must be file parts", where=f"$.documents[{i}]", code="document.missing")
        files.append((item.filename or "document", await item.read()))
    return form, files


def _form(*, required: bool) -> RequestBody:
    text = Schema(type=OpenAPIType.STRING)
    documents = Schema(type=OpenAPIType.ARRAY, max_items=5, items=Schema(
        type=OpenAPIType.STRING, format="binary", description="PDF, PNG or JPEG (checked by content), ≤ 5 MiB"))
    if required:
        props = {"name": text, "type": Schema(type=OpenAPIType.STRING, enum=list(filing.KINDS)),
                 "use": Schema(type=OpenAPIType.STRING, enum=["self", "others"]), "documents": documents}
        schema = Schema(type=OpenAPIType.OBJECT, required=["name", "type", "use", "documents"], properties=props)
    else:
        schema = Schema(type=OpenAPIType.OBJECT, properties={"documents": documents})
    return RequestBody(required=required, content={"multipart/form-data": OpenAPIMediaType(schema=schema)},
                       description="The application form: `curl -F name=示例商城 -F type=company -F use=self "
                                   "-F documents=@licence.pdf`" if required else "More documents (optional)")


@dataclasses.dataclass
class ApplyOperation(Operation):
    """The handlers read the multipart form themselves (files checked by content), so the body is said here."""

    def __post_init__(self) -> None:
        self.request_body = _form(required=True)


@dataclasses.dataclass
class ResubmitOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _form(required=False)


class SignatureApi:
    def __init__(self, service: Service) -> None:
        self.service = service

    def handlers(self, guard: Any, security: Any) -> list[Any]:
        service = self.service
        common: dict[str, Any] = {"guards": [guard], "security": security, "tags": ["signatures"]}

        def rt() -> Any:
            return service.runtime

        def vault() -> filing.DocumentVault:
            return filing.DocumentVault(rt().secrets.phone_keys)

        async def run(fn: Any, *args: Any, **kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

        async def view(fn: Any, *args: Any, **kwargs: Any) -> SignatureOut:
            return _as(SignatureOut, await run(fn, *args, **kwargs))

        @post("/v1/signatures", status_code=201, summary="Apply for a signature (multipart, with documents)",
              request_max_body_size=MAX_UPLOAD, responses=errors(400, 401, 409, 413),
              operation_class=ApplyOperation, **common)
        async def apply(request: Request) -> SignatureOut:
            form, files = await _files(request)
            fields = {k: form.get(k) for k in ("name", "type", "use")}
            for k, v in fields.items():
                if not isinstance(v, str) or "\x00" in v:
                    raise InputError(f"{k} is required (a text field)", where=f"$.{k}", code="signature.form")
            return await view(filing.apply, rt().db, vault(), request.state.key.tenant_id, name=fields["name"],
                              kind=fields["type"], use=fields["use"], files=files,
                              actor=f"key:{request.state.key.prefix}")

        @get("/v1/signatures", summary="The tenant's signatures and their status", responses=errors(400, 401),
             **common)
        async def list_all(request: Request, status: FromQuery[Status | None] = None) -> list[SignatureOut]:
            return _as(list[SignatureOut], await run(filing.list_signatures, rt().db, request.state.key.tenant_id,
                                                     status=status))

        @get("/v1/signatures/{signature_id:int}", summary="A signature: status, reviewer's reason, channels",
             responses=errors(400, 401, 404), **common)
        async def one(request: Request, signature_id: Id) -> SignatureOut:
            return await view(filing.get, rt().db, request.state.key.tenant_id, signature_id)

        @post("/v1/signatures/{signature_id:int}/resubmit", status_code=200,
              summary="Resubmit a rejected signature (optionally with more documents)",
              request_max_body_size=MAX_UPLOAD, responses=errors(400, 401, 404, 409, 413),
              operation_class=ResubmitOperation, **common)
        async def resubmit(request: Request, signature_id: Id) -> SignatureOut:
            files: list[tuple[str, bytes]] = []
            if request.content_type[0].startswith("multipart/form-data"):
                _, files = await _files(request)
            return await view(filing.resubmit, rt().db, vault(), request.state.key.tenant_id, signature_id,
                              files=files, actor=f"key:{request.state.key.prefix}")

        @get("/v1/signatures/{signature_id:int}/documents/{document_id:int}", summary="A qualification document",
             media_type="application/octet-stream", responses=errors(400, 401, 404), **common)
        async def doc(request: Request, signature_id: Id, document_id: Id) -> Response[bytes]:
            name, ctype, data = await run(filing.document, rt().db, vault(), request.state.key.tenant_id,
                                          signature_id, document_id)
            return document_response(name, ctype, data)

        return [apply, list_all, one, resubmit, doc]


def document_response(name: str, ctype: str, data: bytes) -> Response[bytes]:
    """A document as a download: never rendered inline, never sniffed into HTML by the browser."""
    return Response(data, media_type=ctype, headers=filing.download_headers(name))
