"""The customer's signature pages (issue 19): apply with qualification documents, see each application's
status, the reviewer's reason and the carrier channels, and resubmit after a rejection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from smsguard import filing
from smsguard.core import SmsguardError
from smsguard.i18n import gettext
from smsguard.webauth import http_status

if TYPE_CHECKING:  # the router (console._routes) imports this module
    from ._routes import ConsoleUI
    from ._users import ConsoleUser

MAX_UPLOAD = filing.MAX_DOCUMENT_BYTES * 5 + 64 * 1024


async def _files(form: Any) -> list[tuple[str, bytes]]:
    files = []
    for item in form.getall("documents") if "documents" in form else []:
        if not isinstance(item, str) and item.filename:  # an empty file input posts a part with no name
            files.append((item.filename, await item.read()))
    return files


def signature_handlers(
    ui: ConsoleUI, need: Callable[..., Awaitable[ConsoleUser]], actor: Callable[[ConsoleUser], str]
) -> list[Any]:
    def vault() -> filing.DocumentVault:
        return filing.DocumentVault(ui.runtime.secrets.phone_keys)

    async def page(request: Request, u: Any, *, status: int = 200, error: str | None = None,
                   form: dict[str, str] | None = None) -> Response:
        rows = await ui.run(filing.list_signatures, ui.runtime.db, u.tenant_id)
        return ui.render(request, "signatures.html", status=status, rows=rows, error=error, form=form or {},
                         kinds=filing.KINDS, uses=filing.USES)

    @get("/signatures", include_in_schema=False)
    async def signatures_page(request: Request) -> Response:
        u = await need(request)
        return await page(request, u)

    @post("/signatures", include_in_schema=False, request_max_body_size=MAX_UPLOAD)
    async def apply(request: Request) -> Response:
        u = await need(request, write=True)
        form = await request.form()
        fields = {k: str(form.get(k) or "") for k in ("name", "type", "use")}
        try:
            s = await ui.run(filing.apply, ui.runtime.db, vault(), u.tenant_id, name=fields["name"],
                             kind=fields["type"], use=fields["use"], files=await _files(form), actor=actor(u))
        except SmsguardError as e:
            if http_status(e) >= 500:
                raise
            return await page(request, u, status=400, form=fields,
                              error=e.message + (f" ({e.where})" if e.where else ""))
        request.session["flash"] = gettext("signature 【%(name)s】 submitted for review", name=s["name"])
        return Redirect(f"/console/signatures/{s['id']}", status_code=303)

    @get("/signatures/{signature_id:int}", include_in_schema=False)
    async def signature_page(request: Request, signature_id: FromPath[int]) -> Response:
        u = await need(request)
        s = await ui.run(filing.get, ui.runtime.db, u.tenant_id, signature_id)  # 404 for another tenant's
        return ui.render(request, "signature.html", s=s, error=None)

    @post("/signatures/{signature_id:int}/resubmit", include_in_schema=False, request_max_body_size=MAX_UPLOAD)
    async def resubmit(request: Request, signature_id: FromPath[int]) -> Response:
        u = await need(request, write=True)
        form = await request.form()
        try:
            await ui.run(filing.resubmit, ui.runtime.db, vault(), u.tenant_id, signature_id,
                         files=await _files(form), actor=actor(u))
        except SmsguardError as e:
            if http_status(e) >= 500 or http_status(e) == 404:
                raise
            s = await ui.run(filing.get, ui.runtime.db, u.tenant_id, signature_id)
            return ui.render(request, "signature.html", status=400, s=s, error=e.message)
        request.session["flash"] = gettext("resubmitted for review")
        return Redirect(f"/console/signatures/{signature_id}", status_code=303)

    @get("/signatures/{signature_id:int}/documents/{document_id:int}", include_in_schema=False)
    async def document(request: Request, signature_id: FromPath[int], document_id: FromPath[int]) -> Response:
        u = await need(request)
        name, ctype, data = await ui.run(filing.document, ui.runtime.db, vault(), u.tenant_id, signature_id,
                                         document_id)
        return Response(data, media_type=ctype, headers=filing.download_headers(name))

    return [signatures_page, apply, signature_page, resubmit, document]
