"""The reviewer's signature-application queue (issue 19): pending applications, their documents (served as
attachments only, never inline), approve / reject with a reason, and each carrier channel's filing status.

Plain forms with the webauth CSRF token, Post/Redirect/Get like the item pages.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from smsguard import filing
from smsguard.core import SmsguardError
from smsguard.i18n import gettext
from smsguard.webauth import http_status

STATUSES = ("pending", "approved", "rejected")


def signature_handlers(ui: Any) -> list[Any]:
    """Routes under ``/review/signatures`` on the ReviewUI ``ui`` (its auth, render and runtime)."""

    def vault() -> filing.DocumentVault:
        return filing.DocumentVault(ui.runtime.secrets.phone_keys)

    @get("/signatures", include_in_schema=False)
    async def queue(request: Request) -> Response:
        await ui.auth.require(request)
        status = request.query_params.get("status") or "pending"
        if status not in STATUSES:
            return ui.render(request, "signatures.html", status=400, rows=[], current="pending",
                             statuses=STATUSES, filter_error=gettext("status must be one of %(statuses)s",
                                                                statuses=", ".join(STATUSES)))
        rows = await ui.run(filing.list_signatures, ui.runtime.db, None, status=status)
        return ui.render(request, "signatures.html", rows=rows, current=status, statuses=STATUSES)

    @get("/signatures/{signature_id:int}", include_in_schema=False)
    async def detail(request: Request, signature_id: FromPath[int]) -> Response:
        user = await ui.auth.require(request)
        try:
            s = await ui.run(filing.get, ui.runtime.db, None, signature_id)
        except SmsguardError as e:
            return ui.render(request, "error.html", status=http_status(e), message=str(e.message))
        return ui.render(request, "signature.html", s=s, can_act=user.can_act,
                         channel_statuses=("pending", "filed", "rejected"))

    @get("/signatures/{signature_id:int}/documents/{document_id:int}", include_in_schema=False)
    async def document(request: Request, signature_id: FromPath[int], document_id: FromPath[int]) -> Response:
        await ui.auth.require(request)
        try:
            name, ctype, data = await ui.run(filing.document, ui.runtime.db, vault(), None, signature_id,
                                             document_id)
        except SmsguardError as e:
            return ui.render(request, "error.html", status=http_status(e), message=str(e.message))
        return Response(data, media_type=ctype, headers=filing.download_headers(name))

    @post("/signatures/{signature_id:int}/decide", include_in_schema=False)
    async def decide(request: Request, signature_id: FromPath[int]) -> Response:
        user = await ui.auth.require(request)
        form = await request.form()
        action = str(form.get("action") or "")
        try:
            if not user.can_act:
                raise SmsguardError("your role may not decide", code="review.role")
            if action not in ("approve", "reject"):
                raise SmsguardError("choose approve or reject", code="signature.action")
            await ui.run(filing.decide, ui.runtime.db, signature_id, approve=action == "approve",
                         reason=str(form.get("reason") or ""), reviewer=f"user:{user.username}")
            request.session["flash"] = (gettext("signature %(id)s approved", id=signature_id) if action == "approve"
                                        else gettext("signature %(id)s rejected", id=signature_id))
        except SmsguardError as e:
            request.session["conflict"] = str(e.message)
        return Redirect(f"/review/signatures/{signature_id}", status_code=303)

    @post("/signatures/{signature_id:int}/channel", include_in_schema=False)
    async def channel(request: Request, signature_id: FromPath[int]) -> Response:
        user = await ui.auth.require(request)
        form = await request.form()
        try:
            if not user.can_act:
                raise SmsguardError("your role may not record filings", code="review.role")
            await ui.run(filing.set_channel, ui.runtime.db, signature_id, str(form.get("channel") or "").strip(),
                         str(form.get("status") or ""), note=str(form.get("note") or ""),
                         reviewer=f"user:{user.username}")
            request.session["flash"] = gettext("channel status recorded")
        except SmsguardError as e:
            request.session["conflict"] = str(e.message)
        return Redirect(f"/review/signatures/{signature_id}", status_code=303)

    return [queue, detail, document, decide, channel]


def template_handlers(ui: Any) -> list[Any]:
    """``/review/templates``: template versions waiting for a platform reviewer, approve / reject with a reason."""
    from smsguard import batches

    def ctx() -> Any:
        return batches.Context.of(ui.runtime, actor="system:review_ui")

    @get("/templates", include_in_schema=False)
    async def queue(request: Request) -> Response:
        user = await ui.auth.require(request)
        rows = await ui.run(batches.pending_versions, ctx())
        return ui.render(request, "template_versions.html", rows=rows, can_act=user.can_act)

    @post("/templates/versions/{version_id:int}/decide", include_in_schema=False)
    async def decide(request: Request, version_id: FromPath[int]) -> Response:
        user = await ui.auth.require(request, next="/review/templates")
        form = await request.form()
        action = str(form.get("action") or "")
        try:
            if not user.can_act:
                raise SmsguardError("your role may not decide", code="review.role")
            if action not in ("approve", "reject"):
                raise SmsguardError("choose approve or reject", code="template.action")
            await ui.run(batches.decide_version, ctx(), version_id, approve=action == "approve",
                         reason=str(form.get("reason") or ""), reviewer=f"user:{user.username}")
            request.session["flash"] = (gettext("template version %(id)s approved", id=version_id)
                                        if action == "approve"
                                        else gettext("template version %(id)s rejected", id=version_id))
        except SmsguardError as e:
            request.session["conflict"] = str(e.message)
        return Redirect("/review/templates", status_code=303)

    return [queue, decide]
