"""Aliyun SMS (Dysmsapi 2017-05-25) on smsguard: ``SendSms``, ``SendBatchSms``, ``QuerySendDetails``.

The SDK (``alibabacloud_dysmsapi20170525``) posts to ``/`` of its endpoint with every parameter in the query
(SendBatchSms: the JSON lists in a form body) and signs with V3 ``ACS3-HMAC-SHA256`` by default, or with
the RPC ``HMAC-SHA1`` signature when configured with ``signature_algorithm="v2"``; both are checked
(``_signing``), with a 15-minute timestamp window and each nonce accepted once (Redis, 15 minutes).

Authentication failures are HTTP 4xx with Aliyun's codes (``SignatureDoesNotMatch``,
``InvalidAccessKeyId.NotFound``, ``SignatureNonceUsed``, ``InvalidTimeStamp.Expired``, ``IncompleteSignature``);
the SDK raises them as ``ClientException``. Business outcomes are HTTP 200 with ``Code`` (``OK``, or e.g.
``isv.SMS_TEMPLATE_ILLEGAL``, ``isv.MOBILE_NUMBER_ILLEGAL``), as Aliyun answers them. A screening block is
``isv.BLACK_KEY_CONTROL_LIMIT`` with smsguard's reasons in ``Message``. ``TemplateCode`` is a smsguard template id
(``SMS_12`` or ``12``); ``BizId`` is the batch id. Numbers in QuerySendDetails are masked.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from smsguard import batches
from smsguard.core import SmsguardError

from . import _send, _signing
from ._credentials import Credential, find_credential

VERSION = "2017-05-25"
MAX_SEND = 1000  # numbers per SendSms (Aliyun's limit)
MAX_BATCH = 100  # numbers per SendBatchSms
MAX_PAGE = 50

CODES = {
    "template": "isv.SMS_TEMPLATE_ILLEGAL",
    "signature": "isv.SMS_SIGNATURE_ILLEGAL",
    "params": "isv.TEMPLATE_MISSING_PARAMETERS",
    "param_length": "isv.PARAM_LENGTH_LIMIT",
    "phone": "isv.MOBILE_NUMBER_ILLEGAL",
    "count": "isv.MOBILE_COUNT_OVER_LIMIT",
    "missing": "isv.INVALID_PARAMETERS",
    "invalid": "isv.INVALID_PARAMETERS",
    "blocked": "isv.BLACK_KEY_CONTROL_LIMIT",
    "budget": "isv.AMOUNT_NOT_ENOUGH",
    "app": "isv.INVALID_PARAMETERS",
}
AUTH = {  # kind → (HTTP status, Aliyun code)
    "malformed": (400, "IncompleteSignature"),
    "unknown_key": (404, "InvalidAccessKeyId.NotFound"),
    "mismatch": (400, "SignatureDoesNotMatch"),
    "expired": (400, "InvalidTimeStamp.Expired"),
    "nonce": (400, "SignatureNonceUsed"),
}
_TEMPLATE = re.compile(r"^(?:SMS_)?([0-9]{1,10})$")


class AliyunError(SmsguardError):
    """An answer in Aliyun's words: ``code`` is Aliyun's error code, ``status`` the HTTP status Aliyun uses."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status = status


def handle(ctx: batches.Context, *, method: str, path: str, query: Sequence[tuple[str, str]],
           form: Sequence[tuple[str, str]], headers: Mapping[str, Sequence[str]], body: bytes,
           now: float) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for one request; ``headers``: lower-case names to all their values."""
    request_id = str(uuid.uuid4()).upper()
    try:
        result = _handle(ctx, method=method, path=path, query=query, form=form, headers=headers, body=body,
                         now=now)
    except AliyunError as e:
        return e.status, {"Code": e.code, "Message": e.message, "RequestId": request_id}
    return 200, {"Code": "OK", "Message": "OK", **result, "RequestId": request_id}


def _handle(ctx: batches.Context, *, method: str, path: str, query: Sequence[tuple[str, str]],
            form: Sequence[tuple[str, str]], headers: Mapping[str, Sequence[str]], body: bytes,
            now: float) -> dict[str, Any]:
    if any("\x00" in k or "\x00" in v for k, v in (*query, *form)):
        raise AliyunError(400, "InvalidParameter", "parameters must not contain NUL (U+0000)")
    params = dict(query)
    if len(params) != len(query) or len({k for k, _ in form} | set(params)) != len(params) + len(form):
        raise AliyunError(400, "InvalidParameter", "a parameter is given twice")
    params.update(form)
    cred, action, version = _authenticate(ctx, method=method, path=path, query=query, params=params,
                                          headers=headers, body=body, now=now)
    if version != VERSION:
        raise AliyunError(400, "InvalidVersion", f"Version must be {VERSION}")
    if action == "SendSms":
        return _send_sms(ctx, cred, params)
    if action == "SendBatchSms":
        return _send_batch(ctx, cred, params)
    if action == "QuerySendDetails":
        return _query(ctx, cred, params)
    raise AliyunError(404, "InvalidAction.NotFound", f"action {action[:64]!r} is not one smsguard offers "
                      "(SendSms, SendBatchSms, QuerySendDetails)")


def _first(headers: Mapping[str, Sequence[str]], name: str) -> str:
    values = headers.get(name, ())
    return values[0] if values else ""


def _authenticate(ctx: batches.Context, *, method: str, path: str, query: Sequence[tuple[str, str]],
                  params: dict[str, str], headers: Mapping[str, Sequence[str]], body: bytes,
                  now: float) -> tuple[Credential, str, str]:
    """The credential, action and version of a correctly signed, fresh, first-time request."""
    authorization = _first(headers, "authorization")
    try:
        if authorization.startswith("ACS3-"):
            auth = _signing.parse_acs3(authorization)
            key_id, nonce = auth.access_key_id, _first(headers, "x-acs-signature-nonce")
            cred = _credential(ctx, key_id)
            _signing.verify_acs3(auth, cred.secret, method=method, path=path, query=query, headers=headers,
                                 body=body, now=now)
            action, version = _first(headers, "x-acs-action"), _first(headers, "x-acs-version")
        elif "Signature" in params:
            key_id, nonce = params.get("AccessKeyId", ""), params.get("SignatureNonce", "")
            cred = _credential(ctx, key_id)
            _signing.verify_rpc(cred.secret, method=method, params=params, now=now)
            action, version = params.get("Action", ""), params.get("Version", "")
        else:
            raise _signing.SignatureError("malformed", "the request is not signed (ACS3-HMAC-SHA256 Authorization "
                                          "header, or the RPC Signature parameter)")
        if not nonce or len(nonce) > 128:
            raise _signing.SignatureError("malformed", "a signature nonce of 1 to 128 characters is required")
        # after the signature: nobody without the secret can use up someone's nonces
        fresh = ctx.redis.set(f"{ctx.namespace}:vendor:nonce:{key_id}:{nonce}", 1, nx=True,
                              ex=_signing.ALIYUN_WINDOW * 2)
        if not fresh:
            raise _signing.SignatureError("nonce", "this signature nonce was used already")
    except _signing.SignatureError as e:
        status, code = AUTH[e.kind]
        raise AliyunError(status, code, e.message) from None
    return cred, action, version


def _credential(ctx: batches.Context, key_id: str) -> Credential:
    cred = find_credential(ctx.db, ctx.vault, "aliyun", key_id)
    if cred is None:
        raise _signing.SignatureError("unknown_key", "the AccessKeyId is unknown or revoked")
    return cred


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value.strip():
        raise AliyunError(200, "isv.INVALID_PARAMETERS", f"{name} is required")
    return value


def _template(params: Mapping[str, str]) -> tuple[str, int | None]:
    ref = _required(params, "TemplateCode").strip()
    m = _TEMPLATE.match(ref)
    return ref, int(m[1]) if m else None


def _json(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the interpreter's limit
        raise AliyunError(200, "isv.INVALID_JSON_PARAM", f"{name} is not valid JSON") from None


def _template_values(raw: Any, name: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or any(not isinstance(v, str) for v in raw.values()):
        raise AliyunError(200, "isv.INVALID_JSON_PARAM",
                          f'{name} must be a JSON object of strings, e.g. {{"code":"123456"}}')
    return raw


def _sent(ctx: batches.Context, cred: Credential, **kwargs: Any) -> _send.SendResult:
    try:
        return _send.send(ctx, cred, all_numbers_valid=True, **kwargs)
    except _send.VendorError as e:
        raise AliyunError(200, CODES[e.kind], e.message) from None


def _send_sms(ctx: batches.Context, cred: Credential, params: Mapping[str, str]) -> dict[str, Any]:
    numbers = [n.strip() for n in _required(params, "PhoneNumbers").split(",") if n.strip()]
    ref, tid = _template(params)
    raw = params.get("TemplateParam")
    values = _template_values(_json(raw, "TemplateParam") if raw else None, "TemplateParam")
    result = _sent(ctx, cred, template_ref=ref, template_id=tid, sign_name=_required(params, "SignName"),
                   numbers=numbers, values=values, session_context=params.get("OutId"), max_numbers=MAX_SEND)
    return {"BizId": result.biz_id}


def _send_batch(ctx: batches.Context, cred: Credential, params: Mapping[str, str]) -> dict[str, Any]:
    numbers = _json(_required(params, "PhoneNumberJson"), "PhoneNumberJson")
    signs = _json(_required(params, "SignNameJson"), "SignNameJson")
    raw = params.get("TemplateParamJson")
    values = _json(raw, "TemplateParamJson") if raw else [None] * len(numbers) if isinstance(numbers, list) else None
    if not all(isinstance(x, list) for x in (numbers, signs, values)) or any(
            not isinstance(v, str) for v in (*numbers, *signs)):
        raise AliyunError(200, "isv.INVALID_JSON_PARAM", "PhoneNumberJson and SignNameJson are JSON lists of "
                          "strings, TemplateParamJson a JSON list of objects")
    if not len(numbers) == len(signs) == len(values):
        raise AliyunError(200, "isv.INVALID_PARAMETERS", "PhoneNumberJson, SignNameJson and TemplateParamJson "
                          "must have one entry per number")
    if len(numbers) > MAX_BATCH:
        raise AliyunError(200, CODES["count"], f"at most {MAX_BATCH} numbers per SendBatchSms")
    ref, tid = _template(params)
    groups: dict[tuple[str, str], tuple[str, dict[str, str], list[str]]] = {}  # one batch per distinct content
    for i, (number, sign, value) in enumerate(zip(numbers, signs, values, strict=True)):
        vals = _template_values(value, f"TemplateParamJson[{i}]")
        key = (sign, json.dumps(vals, sort_keys=True, ensure_ascii=False))
        groups.setdefault(key, (sign, vals, []))[2].append(number)
    if not groups:
        raise AliyunError(200, "isv.INVALID_PARAMETERS", "PhoneNumberJson is empty")
    biz: str | None = None
    blocked: list[str] = []
    sent = 0
    for sign, vals, group in groups.values():
        try:
            result = _send.send(ctx, cred, template_ref=ref, template_id=tid, sign_name=sign, numbers=group,
                                values=vals, session_context=params.get("OutId"), biz_id=biz,
                                max_numbers=MAX_BATCH, all_numbers_valid=True)
        except _send.VendorError as e:
            if e.kind != "blocked":
                after = f" (the numbers before were accepted under BizId {biz})" if biz else ""
                raise AliyunError(200, CODES[e.kind], e.message + after) from None
            blocked.append(f"{', '.join(batches.mask(n) for n in group)}: {e.message}")
            continue
        biz = biz or result.biz_id
        sent += len(group)
    if blocked:
        accepted = f"; {sent} other number(s) accepted under BizId {biz}" if biz else ""
        raise AliyunError(200, CODES["blocked"], "; ".join(blocked)[:1500] + accepted)
    return {"BizId": biz}


def _int(params: Mapping[str, str], name: str, lo: int, hi: int) -> int:
    value = _required(params, name).strip()
    if not value.isascii() or not value.isdigit() or not lo <= int(value) <= hi:
        raise AliyunError(200, "isv.INVALID_PARAMETERS", f"{name} must be a whole number from {lo} to {hi}")
    return int(value)


_SEND_STATUS = {"queued": 1, "deferred": 1, "submitted": 1, "delivered": 3}  # 1 waiting, 2 failed, 3 delivered


def _query(ctx: batches.Context, cred: Credential, params: Mapping[str, str]) -> dict[str, Any]:
    phone = _required(params, "PhoneNumber").strip()
    try:
        day = datetime.strptime(_required(params, "SendDate").strip(), "%Y%m%d").date()
    except ValueError:
        raise AliyunError(200, "isv.INVALID_PARAMETERS", "SendDate must be yyyyMMdd") from None
    size = _int(params, "PageSize", 1, MAX_PAGE)
    page = _int(params, "CurrentPage", 1, 1_000_000)
    try:
        total, rows = _send.query_details(ctx, cred, phone=phone, day=day, biz_id=params.get("BizId") or None,
                                          page=page, size=size)
    except batches.InvalidPhone as e:
        raise AliyunError(200, CODES["phone"], e.message) from None
    details = [{
        "PhoneNum": r.phone_masked,
        "SendStatus": _SEND_STATUS.get(r.status, 2),
        "ErrCode": "DELIVERED" if r.status == "delivered" else (r.carrier_code or r.status),
        "TemplateCode": r.template_ref,
        "Content": r.content or "",
        "SendDate": _send.china_time(r.submitted_at or r.created_at),
        "ReceiveDate": _send.china_time(r.final_at),
        "OutId": r.session_context or "",
    } for r in rows]
    return {"TotalCount": total, "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}}
