"""The drop-in vendor endpoints (issue 17): Tencent Cloud SMS and Aliyun SMS, as their SDKs call them.

Both SDKs post to ``/`` of the endpoint they are given, so ``POST /`` takes either: a request with
``X-TC-Action`` is Tencent's, any other Aliyun's. ``POST /tencent`` and ``POST /aliyun`` take one vendor each
(for a proxy that routes by path). These routes are authenticated by the vendor's request signature against a
vendor credential (``smsguard key vendor create``), not by an smsguard API key: they carry no key guard, and
``api/_roles.py`` lists them in ``VENDOR_SIGNED``. The work runs in the thread pool (SQL and Redis are sync).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import msgspec
from litestar import Request, Response, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from smsguard.vendors import aliyun, tencent

from ._batches import BatchApi

MAX_FIELDS = 2000  # query + form parameters: far above SendBatchSms's 4 fields and the signature's 8


class TencentAnswer(msgspec.Struct):
    """``{"Response": {…, "RequestId"}}``, or ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``;
    always HTTP 200, as Tencent Cloud answers."""

    Response: dict[str, Any]


class AliyunAnswer(msgspec.Struct):
    """``Code`` is ``OK`` or Aliyun's error code; HTTP 200 for business outcomes, 4xx for authentication."""

    Code: str
    Message: str
    RequestId: str


_TENCENT_DOC = ("Tencent Cloud SMS API 2021-01-11 (SendSms, PullSmsSendStatus, PullSmsReplyStatus): JSON body, action "
                "in X-TC-Action, signed TC3-HMAC-SHA256 with a vendor credential. Always 200; errors in "
                "Response.Error.")
_ALIYUN_DOC = ("Aliyun Dysmsapi 2017-05-25 (SendSms, SendBatchSms, QuerySendDetails): parameters in the query and "
               "form body, signed ACS3-HMAC-SHA256 (Authorization) or RPC HMAC-SHA1 (Signature).")
_ALIYUN_ERRORS = {
    400: ResponseSpec(data_container=AliyunAnswer, description="Signature missing, malformed, wrong or expired; "
                      "nonce reused; bad parameter encoding", generate_examples=False),
    404: ResponseSpec(data_container=AliyunAnswer, description="Unknown AccessKeyId or action",
                      generate_examples=False),
}


# The handlers read the raw body (its bytes are signed), so litestar sees no `data`: the bodies are said here.
_TENCENT_BODY = ("tencent", "application/json", OpenAPIMediaType(schema=Schema(
    type=OpenAPIType.OBJECT, description="The action's parameters (SendSms: PhoneNumberSet, SmsSdkAppId, "
    "TemplateId, SignName, TemplateParamSet, SessionContext), as the Tencent Cloud SDK sends them")))
_ALIYUN_BODY = ("aliyun", "application/x-www-form-urlencoded", OpenAPIMediaType(schema=Schema(
    type=OpenAPIType.OBJECT, additional_properties=Schema(type=OpenAPIType.STRING),
    description="The action's parameters (SendSms: PhoneNumbers, SignName, TemplateCode, TemplateParam, OutId); "
    "the Aliyun SDK may put them in the query string instead")))


def _vendor_operation(*bodies: tuple[str, str, OpenAPIMediaType]) -> type[Operation]:
    @dataclasses.dataclass
    class VendorOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                required=False, content={media_type: media for _, media_type, media in bodies},
                description="Signed by the vendor SDK: " + "; ".join(f"{v}: {t}" for v, t, _ in bodies))

    return VendorOperation


def _headers(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in request.scope["headers"]:
        out.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return out


def _pairs(raw: str) -> list[tuple[str, str]] | None:
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (ValueError, UnicodeDecodeError):
        return None
    return pairs


def handlers(batch_api: BatchApi) -> list[Any]:
    async def run_tencent(request: Request, body: bytes) -> Response:
        headers = {k: v[0] for k, v in _headers(request).items()}
        query = request.scope.get("query_string", b"").decode("latin-1")
        answer = await anyio.to_thread.run_sync(lambda: tencent.handle(
            batch_api.ctx, method=request.method, query=query, headers=headers, body=body, now=time.time()))
        return Response(answer, status_code=200)

    async def run_aliyun(request: Request, body: bytes) -> Response:
        headers = _headers(request)
        query = _pairs(request.scope.get("query_string", b"").decode("latin-1"))
        content_type = headers.get("content-type", [""])[0].split(";")[0].strip().lower()
        form: list[tuple[str, str]] | None = []
        if content_type == "application/x-www-form-urlencoded" and body:
            try:
                form = _pairs(body.decode())
            except UnicodeDecodeError:
                form = None
        if query is None or form is None:
            return Response({"Code": "InvalidParameter", "Message": "the query or form body is not valid "
                             "URL-encoded UTF-8", "RequestId": ""}, status_code=400)
        status, answer = await anyio.to_thread.run_sync(lambda: aliyun.handle(
            batch_api.ctx, method=request.method, path=request.url.path, query=query, form=form, headers=headers,
            body=body, now=time.time()))
        return Response(answer, status_code=status)

    @post("/", status_code=200, summary="Tencent Cloud or Aliyun SMS API, as their SDKs call it",
          description=f"A request with X-TC-Action is Tencent's: {_TENCENT_DOC} Any other is Aliyun's: {_ALIYUN_DOC}",
          tags=["vendor-compatible"], responses=_ALIYUN_ERRORS,
          operation_class=_vendor_operation(_TENCENT_BODY, _ALIYUN_BODY))
    async def vendor_root(request: Request) -> Response[TencentAnswer | AliyunAnswer]:
        body = await request.body()
        if "x-tc-action" in request.headers:
            return await run_tencent(request, body)
        return await run_aliyun(request, body)

    @post("/tencent", status_code=200, summary="Tencent Cloud SMS API 2021-01-11", description=_TENCENT_DOC,
          tags=["vendor-compatible"], operation_class=_vendor_operation(_TENCENT_BODY))
    async def vendor_tencent(request: Request) -> Response[TencentAnswer]:
        return await run_tencent(request, await request.body())

    @post("/aliyun", status_code=200, summary="Aliyun SMS API (Dysmsapi 2017-05-25)", description=_ALIYUN_DOC,
          tags=["vendor-compatible"], responses=_ALIYUN_ERRORS, operation_class=_vendor_operation(_ALIYUN_BODY))
    async def vendor_aliyun(request: Request) -> Response[AliyunAnswer]:
        return await run_aliyun(request, await request.body())

    return [vendor_root, vendor_tencent, vendor_aliyun]
