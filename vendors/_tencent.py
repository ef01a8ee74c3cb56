"""Tencent Cloud SMS API 2021-01-11 on smsguard: ``SendSms``, ``PullSmsSendStatus``, ``PullSmsReplyStatus``.

As Tencent does, every answer is HTTP 200 with ``{"Response": {...}}``; a failure is
``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` in Tencent's codes (the SDK raises
``TencentCloudSDKException`` with them). The action comes from ``X-TC-Action``, the request is signed with
TC3-HMAC-SHA256 (``_signing``; one signed SendSms is accepted once), ``SmsSdkAppId`` must be the credential's,
``TemplateId`` is a smsguard template id and ``SignName`` its signature. A screening block is
``FailedOperation.ContainSensitiveWord`` with smsguard's reasons in the message. Numbers in pulls are masked
(``+86138****1234``): match them by ``SerialNo``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec

from smsguard import batches
from smsguard.core import SmsguardError

from . import _send, _signing
from ._credentials import Credential, find_credential

VERSION = "2021-01-11"
MAX_NUMBERS = 200  # Tencent's limit per SendSms
MAX_PULL = 100  # Tencent's Limit bound for the pulls

CODES = {
    "template": "FailedOperation.TemplateIncorrectOrUnapproved",
    "signature": "FailedOperation.SignatureIncorrectOrUnapproved",
    "params": "InvalidParameterValue.TemplateParameterFormatError",
    "param_length": "InvalidParameterValue.TemplateParameterLengthLimit",
    "phone": "InvalidParameterValue.IncorrectPhoneNumber",
    "count": "LimitExceeded.PhoneNumberCountLimit",
    "missing": "MissingParameter.EmptyPhoneNumberSet",
    "invalid": "InvalidParameterValue",
    "blocked": "FailedOperation.ContainSensitiveWord",
    "budget": "FailedOperation.InsufficientBalanceInSmsPackage",
    "app": "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
}
AUTH_CODES = {
    "malformed": "AuthFailure.InvalidAuthorization",
    "unknown_key": "AuthFailure.SecretIdNotFound",
    "mismatch": "AuthFailure.SignatureFailure",
    "expired": "AuthFailure.SignatureExpire",
}
_Str = Annotated[str, msgspec.Meta(max_length=1000)]
T = TypeVar("T")


class SendSmsIn(msgspec.Struct, forbid_unknown_fields=True):
    PhoneNumberSet: list[_Str]
    SmsSdkAppId: _Str
    TemplateId: _Str
    SignName: _Str | None = None
    TemplateParamSet: list[_Str] = []
    ExtendCode: _Str | None = None
    SessionContext: _Str | None = None
    SenderId: _Str | None = None


class PullIn(msgspec.Struct, forbid_unknown_fields=True):
    Limit: int
    SmsSdkAppId: _Str


class TencentError(SmsguardError):
    """An answer in Tencent's words: ``code`` is Tencent's error code (answered in a 200, as Tencent does)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


def handle(ctx: batches.Context, *, method: str, query: str, headers: Mapping[str, str], body: bytes,
           now: float) -> dict[str, Any]:
    """The ``{"Response": …}`` for one request (``headers``: lower-case names). Never raises for client input."""
    request_id = str(uuid.uuid4())
    try:
        result = _handle(ctx, method=method, query=query, headers=headers, body=body, now=now)
    except TencentError as e:
        return {"Response": {"Error": {"Code": e.code, "Message": e.message}, "RequestId": request_id}}
    return {"Response": {**result, "RequestId": request_id}}


def _handle(ctx: batches.Context, *, method: str, query: str, headers: Mapping[str, str], body: bytes,
            now: float) -> dict[str, Any]:
    action = headers.get("x-tc-action", "")
    if method != "POST":
        raise TencentError("UnsupportedProtocol", "smsguard's Tencent endpoint takes POST with a JSON body")
    cred = _authenticate(ctx, method=method, query=query, headers=headers, body=body, now=now)
    if headers.get("x-tc-version", "") != VERSION:
        raise TencentError("InvalidParameterValue", f"X-TC-Version must be {VERSION}")
    if action == "SendSms":
        return _send_sms(ctx, cred, _decode(body, SendSmsIn))
    if action in ("PullSmsSendStatus", "PullSmsReplyStatus"):
        req = _decode(body, PullIn)
        _check_app(cred, req.SmsSdkAppId)
        if not 1 <= req.Limit <= MAX_PULL:
            raise TencentError("InvalidParameterValue", f"Limit must be 1 to {MAX_PULL}")
        if action == "PullSmsSendStatus":
            return {"PullSmsSendStatusSet": [_status(r) for r in _send.pull_send_status(ctx, cred, req.Limit)]}
        return {"PullSmsReplyStatusSet": [_reply(r) for r in _send.pull_replies(ctx, cred, req.Limit)]}
    raise TencentError("InvalidAction", f"action {action[:64]!r} is not one smsguard offers "
                       "(SendSms, PullSmsSendStatus, PullSmsReplyStatus)")


def _authenticate(ctx: batches.Context, **request: Any) -> Credential:
    try:
        auth = _signing.parse_tc3(request["headers"].get("authorization"))
        cred = find_credential(ctx.db, ctx.vault, "tencent", auth.secret_id)
        if cred is None:
            raise _signing.SignatureError("unknown_key", "the SecretId is unknown or revoked")
        _signing.verify_tc3(auth, cred.secret, **request)
        # TC3 has no nonce: the same signed SendSms (same body, same second) is taken once in its window, so a
        # captured one cannot be replayed into duplicate sends. Not the pulls: two identical polls within one
        # second are indistinguishable from a replay, and repeating a pull sends nothing
        action = request["headers"].get("x-tc-action", "")
        if action == "SendSms" and not ctx.redis.set(f"{ctx.namespace}:vendor:tc3:{auth.signature}", 1, nx=True,
                                                     ex=2 * _signing.TENCENT_WINDOW):
            raise _signing.SignatureError("mismatch", "this signed request was received already (a replay)")
    except _signing.SignatureError as e:
        raise TencentError(AUTH_CODES[e.kind], e.message) from None
    return cred


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as e:
        text = str(e)
        code = ("UnknownParameter" if "unknown field" in text
                else "MissingParameter" if "missing required field" in text else "InvalidParameter")
        raise TencentError(code, text) from None
    except msgspec.DecodeError as e:
        raise TencentError("InvalidParameter", f"the body is not JSON: {e}") from None


def _check_app(cred: Credential, app_id: str) -> None:
    if app_id != cred.app_id:
        raise TencentError(CODES["app"], "SmsSdkAppId is not the one of this SecretId")


def _send_sms(ctx: batches.Context, cred: Credential, req: SendSmsIn) -> dict[str, Any]:
    _check_app(cred, req.SmsSdkAppId)
    ref = req.TemplateId.strip()
    try:
        result = _send.send(ctx, cred, template_ref=ref, template_id=int(ref) if ref.isascii() and ref.isdigit()
                            and len(ref) < 11 else None, sign_name=req.SignName, numbers=req.PhoneNumberSet,
                            values=req.TemplateParamSet, session_context=req.SessionContext,
                            max_numbers=MAX_NUMBERS)
    except _send.VendorError as e:
        raise TencentError(CODES[e.kind], e.message) from None
    held = result.state == "review"
    out = []
    for n in result.numbers:
        if n.status == "invalid":
            code, message = CODES["phone"], n.detail or "invalid phone number"
        else:
            code, message = "Ok", "held for smsguard review" if held else "send success"
        out.append({"SerialNo": n.serial, "PhoneNumber": n.raw, "Fee": n.fee,
                    "SessionContext": req.SessionContext or "", "Code": code, "Message": message, "IsoCode": "CN"})
    return {"SendStatusSet": out}


def _status(r: Any) -> dict[str, Any]:
    masked = r.phone_masked
    return {
        "UserReceiveTime": _send.china_time(r.final_at),
        "CountryCode": "86",
        "SubscriberNumber": masked,
        "PhoneNumber": "+86" + masked,
        "SerialNo": batches.message_id(r.batch_id, r.seq),
        "ReportStatus": "SUCCESS" if r.status == "delivered" else "FAIL",
        "Description": "DELIVRD" if r.status == "delivered" else f"{r.status}: {r.carrier_code or r.detail or ''}"
        .rstrip(": "),
        "SessionContext": r.session_context or "",
    }


def _reply(r: Any) -> dict[str, Any]:
    return {
        "ExtendCode": "",
        "CountryCode": "86",
        "PhoneNumber": "+86" + r.phone_masked,
        "SubscriberNumber": r.phone_masked,
        "SignName": r.signature,
        "ReplyContent": r.text,
        "ReplyTime": _send.china_time(r.created_at),
    }
