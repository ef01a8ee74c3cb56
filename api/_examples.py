"""Request and response examples for every operation of the OpenAPI document (issue 17, point 6).

One table, like ``api/_roles.py``: ``(method, OpenAPI path) → Examples``. ``add_examples`` puts them into the
document as litestar ``Example`` objects, on each media type of the request body and of the first 2xx
response. ``tests/api/test_examples.py`` walks the document: every operation needs an example, every
example must fit its schema, and the request examples are sent to a running app and must succeed, so a new
route needs a row here and a row cannot drift from what the API really takes and answers. The values were
taken from real answers (ids, hashes and times shortened).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import Example, OpenAPIMediaType, OpenAPIResponse, Operation, RequestBody

JSON = "application/json"
_VERSIONS = {"policy": "2026.11.25+51b619a2", "lexicon": "76c9368b0d48", "model": "20261125-3af20342"}
_HASH = "2592948447f95d76daa07e9e336119b038582df0afe0cbd330a1f03e8613c441"


@dataclass(frozen=True)
class Examples:
    """One operation's examples: ``request`` and ``response`` map a media type to a value (a JSON value, or
    the text of a CSV / JSON Lines / metrics body)."""

    summary: str
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)


def _line(value: Any) -> str:
    """``value`` as one JSON Lines line."""
    return msgspec.json.encode(value).decode() + "\n"


def _json(value: Any) -> dict[str, Any]:
    return {JSON: value}


_PASS = {
    "id": "m1", "decision": "pass", "score": 0.0003, "kind": "verification", "kind_inferred": False, "length": 26,
    "segments": 1, "reasons": [], "versions": _VERSIONS,
    "classifier": {"score": 0.00028, "category": None, "category_score": None}, "notes": [],
    "verdict_id": "01a23b7f5aec41e5f715c200194e16a5", "cached": False,
}
_BLOCK = {
    "id": "b", "decision": "block", "score": 0.9676, "kind": "marketing", "kind_inferred": False, "length": 16,
    "segments": 1,
    "reasons": [
        {"code": "lexicon.gambling", "category": "gambling", "severity": "high", "source": "lexicon",
         "action": "block", "message": "sensitive term (gambling, substring match)", "term": "百家乐",
         "start": 2, "end": 5},
        {"code": "contact.wechat", "category": "contact", "severity": "high", "source": "rule", "action": "block",
         "message": "WeChat id (diversion to a private contact)", "term": "加V：abc_123", "start": 6, "end": 16},
        {"code": "signature.missing", "category": "form", "severity": "medium", "source": "rule",
         "action": "block", "message": "no 【signature】 at the start or end of the message", "term": None,
         "start": None, "end": None},
    ],
    "versions": _VERSIONS, "classifier": {"score": 0.967605, "category": "gambling", "category_score": 0.66721},
    "notes": [], "verdict_id": "01a23b7f5e9941e5f715c200194e16a7", "cached": False,
}
_TEMPLATE = {
    "id": 1, "name": "shipping", "kind": "notification", "signature": "示例商城",
    "body": "您的订单${order}已发货，请注意查收。", "variables": ["order"], "status": "approved", "reason": None,
    "verdict": {k: v for k, v in _PASS.items() if k not in ("verdict_id", "cached")} | {
        "id": None, "kind": "notification", "length": 29, "score": 0.0012},
    "created_at": "2026-12-03T10:42:12.802467",
}
_CSV = "手机号码,order\r\n13812345678,SF1234567\r\n13912345678,SF7654321\r\n1381234,SF0\r\n"
_LIST = {
    "id": 1, "name": "vip", "status": "ready", "encoding": "utf-8", "columns": ["order"], "total": 3, "valid": 2,
    "invalid": 1, "duplicates": 0, "error": None,
    "rejected": [{"line": 4, "kind": "invalid", "code": "phone.invalid", "reason": "not a valid phone number",
                  "value": "*******"}],
}
_BATCH = {
    "id": 1, "name": "autumn", "state": "draft", "kind": "notification", "signature": "示例商城", "sender": "0001",
    "template_id": 1, "list_id": 1, "schedule_at": None, "resume_at": None, "total": 2, "reason": None,
    "estimate": "0.1000", "currency": "CNY", "counts": {"pending": 2}, "waiting_for": None, "hold": None,
    "cancellable": True, "review": [], "contents": [],
    "created_at": "2026-12-03T10:42:12.825267+00:00", "released_at": None, "done_at": None,
}
_EVENT = {
    "id": 7, "ts": "2026-12-03T10:42:12.826606Z", "actor": "key:sg_2wlhtOAif", "tenant_id": 1,
    "event_type": "batch.draft", "subject": "batch:1", "payload": {"batch_id": 1, "kind": "notification"},
    "prev_hash": "e71c38f468175f71063b055a7b7671560e271c91a1c96a2e1bfd91b1f6bce84f", "hash": _HASH,
}
_EVENT_CSV = (
    "id,ts,actor,tenant_id,event_type,subject,payload,prev_hash,hash\r\n"
    '7,2026-12-03T10:42:12.826606Z,key:sg_2wlhtOAif,1,batch.draft,batch:1,"{""batch_id"":1}",e71c38f4…,2592948…\r\n'
)
_JSONL = "application/x-ndjson"
_TEXT_CSV = "text/csv; charset=utf-8"
_BUDGET = {"limit": "5000.0000", "spent": "0.0000", "remaining": "5000.0000", "currency": "CNY"}

_BALANCE = {"prepaid": True, "balance": "100.0000", "held": "4.5000", "available": "95.5000",
            "low_balance": "10.0000", "charge_on": "handover", "open_holds": 1, "currency": "CNY"}
_ENTRY = {"id": 2, "kind": "hold", "amount": "4.5000", "balance_change": "0.0000", "debit": "available",
          "credit": "held", "balance_after": "100.0000", "held_after": "4.5000", "available_after": "95.5000",
          "hold": "batch:7", "quantity": None, "reference": None, "memo": "batch 7 submitted", "actor": "key:sg_12ab",
          "created_at": "2026-12-03T12:00:00.123456+00:00"}
_TOPUP = _ENTRY | {"id": 1, "kind": "topup", "amount": "100.0000", "balance_change": "+100.0000", "debit": "funding",
                   "credit": "available", "held_after": "0.0000", "available_after": "100.0000", "hold": None,
                   "reference": "pay-20261203-001", "memo": "bank transfer"}
_PRICE_ROW = {"mobile": "0.0450", "unicom": "0.0450", "telecom": "0.0450", "broadnet": "0.0450",
              "virtual": "0.0500", "other": "0.0500"}

_TENCENT_SEND = {"PhoneNumberSet": ["+8613812345678"], "SmsSdkAppId": "1400006666", "TemplateId": "449739",
                 "SignName": "示例商城", "TemplateParamSet": ["123456"], "SessionContext": "order-1"}
_TENCENT_SENT = {"Response": {"SendStatusSet": [{
    "SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": "+8613812345678", "Fee": 1,
    "SessionContext": "order-1", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}],
    "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}
_ALIYUN_SEND = {"PhoneNumbers": "13812345678", "SignName": "示例商城", "TemplateCode": "SMS_154950909",
                "TemplateParam": '{"code":"123456"}', "OutId": "order-1"}
_ALIYUN_SENT = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0",
                "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990"}
_FORM = "application/x-www-form-urlencoded"

_MESSAGE = {
    "id": 1, "state": "scheduled", "to": "138****5678", "kind": "notification", "signature": "示例商城",
    "template_id": None, "origin": "api", "batch_id": 1, "created_at": "2026-12-03T11:36:40.126139+00:00",
    "schedule_at": "2026-12-03T11:36:40.145887+00:00", "decision": "pass", "review": "none", "detail": None,
    "carrier": "mobile", "delivery": {"gateway": None, "carrier_status": None, "submitted_at": None,
                                      "final_at": None},
    "segments": 1, "cost": "0.0450", "currency": "CNY",
}
_MESSAGE_FULL = _MESSAGE | {"text": "【示例商城】您的订单已发货，请注意查收。", "reasons": [], "reason": None}
_VERIFICATION = {
    "id": 1, "status": "pending", "signature": "示例商城", "message_id": 2, "attempts": 0, "attempts_left": 5,
    "created_at": "2026-12-03T11:36:40.181498+00:00", "expires_at": "2026-12-03T11:41:40.181498+00:00",
    "verified_at": None,
}
_VERIFY_SETTINGS = {"length": 6, "alphabet": "0123456789", "ttl_seconds": 300, "max_attempts": 5,
                    "template_id": None, "signature": None}

_SIGNATURE = {
    "id": 1, "tenant_id": 1, "name": "示例商城", "type": "company", "use": "self", "status": "pending", "reason": None,
    "created_at": "2026-12-03T11:49:16.556569", "decided_at": None,
    "documents": [{"id": 1, "filename": "营业执照.pdf", "content_type": "application/pdf", "size": 45,
                   "sha256": "5a838678058f6de375e8635b5f2fea47a4e5f07cb1a882a44b10f39abc6f34ff"}],
    "channels": [],
}
_VERSION = {
    "id": 2, "template_id": 1, "version": 2, "signature": "示例商城",
    "body": "【示例商城】您的订单{order}已发货，请注意查收。", "status": "pending", "reason": None,
    "created_at": "2026-12-03T11:49:16.634412", "decided_at": None,
}
_APPLICATION = {"name": "示例商城", "type": "company", "use": "self", "documents": ["%PDF-1.4 … %%EOF"]}

_WEBHOOK = {
    "id": 1, "url": "https://crm.example.com/hooks/smsguard", "events": ["mo.received", "optout.added"],
    "description": "crm", "enabled": True, "max_concurrency": 4, "timeout": 10.0,
    "previous_secret_valid_until": None, "created_at": "2026-12-03T12:00:16.904232+00:00",
    "updated_at": "2026-12-03T12:00:16.904232+00:00",
}
_WEBHOOK_PATCHED = _WEBHOOK | {"events": ["*"], "max_concurrency": 2, "updated_at": "2026-12-03T12:00:17.004611+00:00"}
_EVENT_ID = "evt_8344e9354a9741d9b9a7f52c4b50b3b2"
_PHONE_SUBJECT = "phone:52c3a6dc7015c4721aa75ce1cacc7ec62ca77e5d75a22ddb3bd8c77465b7c500"
_DELIVERY = {
    "id": 1, "webhook_id": 1, "event_id": _EVENT_ID, "event_type": "mo.received", "subject": _PHONE_SUBJECT,
    "status": "delivered", "attempts": 2, "next_attempt_at": None, "last_status_code": 200, "last_latency_ms": 4.6,
    "last_error": None, "created_at": "2026-12-03T12:00:17.016299+00:00",
    "finished_at": "2026-12-03T12:00:17.130566+00:00",
    "attempt_log": [
        {"attempt": 1, "at": "2026-12-03T12:00:17.064963+00:00", "status_code": 500, "latency_ms": 3.2,
         "error": "HTTP 500"},
        {"attempt": 2, "at": "2026-12-03T12:00:17.130566+00:00", "status_code": 200, "latency_ms": 4.6,
         "error": None},
    ],
}
_DEAD = _DELIVERY | {
    "id": 5, "event_id": "evt_cc47e7f0e6d0474f8b11535a3e704c3a", "event_type": "budget.exceeded",
    "subject": "budget:1", "status": "dead", "attempts": 3, "last_status_code": 503, "last_latency_ms": 5.7,
    "last_error": "HTTP 503", "created_at": "2026-12-03T12:00:17.257133+00:00",
    "finished_at": "2026-12-03T12:00:17.510800+00:00",
    "attempt_log": [{"attempt": n, "at": at, "status_code": 503, "latency_ms": ms, "error": "HTTP 503"}
                    for n, at, ms in ((1, "2026-12-03T12:00:17.319703+00:00", 5.5),
                                      (2, "2026-12-03T12:00:17.384408+00:00", 6.7),
                                      (3, "2026-12-03T12:00:17.510800+00:00", 5.7))],
}
_WEBHOOK_EVENT = {
    "id": _EVENT_ID, "type": "mo.received", "subject": _PHONE_SUBJECT, "created_at": "2026-12-03T12:00:17.016299+00:00",
    "data": {"phone": "139****5678", "phone_hash": _PHONE_SUBJECT.removeprefix("phone:"), "text": "退订", "to": "",
             "signature": "示例商城", "action": "opt_out", "gateway": "api", "ref": None},
}

_PUMP_ALLOW = {
    "id": 1, "scope": "ip", "label": "203.0.113.7", "action": "allow", "code": "pumping.operator", "source": "operator",
    "tenant_id": None, "note": "office NAT", "actor": "key:sg_6BKjbVuah", "lifted_at": None,
    "created_at": "2026-12-03T12:12:39.621219+00:00", "expires_at": "2026-12-04T12:12:39.621219+00:00",
}
_PUMP_BLOCK = _PUMP_ALLOW | {
    "id": 2, "scope": "prefix", "label": "1700000****", "action": "block", "note": "IRSF",
    "created_at": "2026-12-03T12:12:39.764914+00:00", "expires_at": "2026-12-10T12:12:39.764914+00:00",
}

EXAMPLES: dict[tuple[str, str], Examples] = {
    ("POST", "/v1/screen"): Examples(
        "A verification code: passes",
        request=_json({"text": "【示例商城】您的验证码是123456，5分钟内有效。", "kind": "verification", "id": "m1"}),
        response=_json(_PASS)),
    ("POST", "/v1/screen/batch"): Examples(
        "Two messages: one passes, one is blocked (gambling, a WeChat id, no signature)",
        request=_json({"messages": [{"text": "【示例商城】您的订单已发货，单号SF1234567。", "id": "a"},
                                    {"text": "澳门百家乐，加V：abc_123", "id": "b", "kind": "marketing"}]}),
        response=_json({"verdicts": [_PASS | {"id": "a", "kind": "notification", "kind_inferred": True}, _BLOCK]})),
    ("GET", "/v1/verdicts/{verdict_id}"): Examples(
        "A stored verdict, with its text and review state",
        response=_json(_PASS | {"created_at": "2026-12-03T10:42:11.820747+00:00",
                                "text": "【示例商城】您的验证码是123456，5分钟内有效。", "review": None})),
    ("POST", "/v1/admin/reload"): Examples(
        "Reload the policy; the versions now in force",
        request=_json({"what": ["policy"]}), response=_json(_VERSIONS)),
    ("GET", "/v1/audit/events"): Examples(
        "Events as JSON Lines (one object a line) or CSV",
        response={_JSONL: _line(_EVENT), _TEXT_CSV: _EVENT_CSV}),
    ("GET", "/v1/audit/trail"): Examples(
        "A batch's events", response={_JSONL: _line(_EVENT), _TEXT_CSV: _EVENT_CSV}),
    ("GET", "/healthz"): Examples("Alive", response=_json({"status": "ok", **_VERSIONS})),
    ("GET", "/readyz"): Examples("Ready", response=_json({"status": "ready", "database": "ok", "redis": "ok"})),
    ("GET", "/metrics"): Examples(
        "Prometheus text", response={"*": "# TYPE smsguard_requests_total counter\n"
                                          'smsguard_requests_total{route="/v1/screen",status="200"} 42.0\n'}),
    ("POST", "/v1/templates"): Examples(
        "A shipping notice with one variable, screened with a sample value",
        request=_json({"name": "shipping", "kind": "notification", "signature": "示例商城",
                       "body": "您的订单${order}已发货，请注意查收。", "samples": {"order": "SF1234567"}}),
        response=_json(_TEMPLATE)),
    ("GET", "/v1/templates/{template_id}"): Examples("An approved template", response=_json(_TEMPLATE)),
    ("POST", "/v1/contact-lists"): Examples(
        "Three lines: a header naming the phone column and a variable, one number rejected",
        request={"text/csv": _CSV, "multipart/form-data": {"file": _CSV}}, response=_json(_LIST)),
    ("GET", "/v1/contact-lists/{list_id}"): Examples("The list's counts", response=_json(_LIST)),
    ("GET", "/v1/contact-lists/{list_id}/rejects.csv"): Examples(
        "Every rejected line", response={_TEXT_CSV: "line,kind,code,reason,value\r\n"
                                                    "4,invalid,phone.invalid,not a valid phone number,*******\r\n"}),
    ("GET", "/v1/contact-lists/{list_id}/contacts"): Examples(
        "The first contacts, masked", response=_json({"list_id": 1, "columns": ["order"], "valid": 2, "contacts": [
            {"seq": 1, "line": 2, "phone": "138****5678", "carrier": "mobile", "values": ["SF1234567"]},
            {"seq": 2, "line": 3, "phone": "139****5678", "carrier": "mobile", "values": ["SF7654321"]}]})),
    ("GET", "/v1/contact-lists/{list_id}/export.csv"): Examples(
        "The list as it reads back in", response={_TEXT_CSV: "phone,order\r\n13812345678,SF1234567\r\n"
                                                            "13912345678,SF7654321\r\n"}),
    ("POST", "/v1/contact-lists/merge"): Examples(
        "Two lists into one; a number in both is kept once",
        request=_json({"name": "autumn all", "list_ids": [1, 2]}),
        response=_json(_LIST | {"id": 3, "name": "autumn all", "encoding": "merged", "total": 4, "valid": 3,
                                "invalid": 0, "duplicates": 1, "rejected": [], "sources": [1, 2], "opted_out": 0})),
    ("DELETE", "/v1/contact-lists/{list_id}"): Examples(
        "Deleted", response=_json({"id": 1, "deleted": True})),
    ("POST", "/v1/batches"): Examples(
        "A draft batch of fixed content to two numbers (leave out draft to submit it at once)",
        request=_json({"name": "autumn", "content": "【示例商城】您的快递已到，请凭取件码领取。",
                       "numbers": ["13812345678", "13912345678"], "kind": "notification", "draft": True}),
        response=_json(_BATCH | {"template_id": None, "list_id": None, "total": 0, "estimate": "0.0000",
                                 "counts": {}})),
    ("GET", "/v1/batches/{batch_id}"): Examples("A template batch to a list", response=_json(_BATCH)),
    ("POST", "/v1/batches/{batch_id}/submit"): Examples(
        "Submit a draft (a content batch names its numbers again: they were never stored)",
        request=_json({"numbers": ["13812345678", "13912345678"]}),
        response=_json(_BATCH | {"state": "approved"})),
    ("POST", "/v1/batches/{batch_id}/cancel"): Examples(
        "Cancelled", response=_json(_BATCH | {"state": "cancelled", "reason": "cancelled by the customer",
                                          "cancellable": False})),
    ("GET", "/v1/batches/{batch_id}/recipients"): Examples(
        "The first page of recipients",
        response=_json({"recipients": [{"seq": 1, "phone": "138****5678", "carrier": "mobile", "status": "pending",
                                        "detail": None, "submitted_at": None, "final_at": None, "gateway": None,
                                        "carrier_code": None}], "next_after": 1})),
    ("GET", "/v1/batches/{batch_id}/report.csv"): Examples(
        "One row per recipient", response={_TEXT_CSV: (
            "seq,phone,carrier,status,detail,submitted_at,final_at,gateway,carrier_code\r\n"
            "1,138****5678,mobile,delivered,,2026-12-03T10:45:00Z,2026-12-03T10:45:03Z,cmpp-main,DELIVRD\r\n")}),
    ("POST", "/v1/inbound"): Examples(
        "TD: the number opts out of the signature",
        request=_json({"phone": "13812345678", "text": "TD", "signature": "示例商城"}),
        response=_json({"action": "opt_out", "scope": "signature", "phone": "138****5678"})),
    ("POST", "/v1/optouts"): Examples(
        "Opt a number out tenant-wide", request=_json({"phone": "13912345678"}),
        response=_json({"phone": "139****5678", "opted_out": True})),
    ("POST", "/v1/optouts/remove"): Examples(
        "Opt it back in", request=_json({"phone": "13912345678"}),
        response=_json({"phone": "139****5678", "lifted": ["tenant"]})),
    ("POST", "/v1/optouts/status"): Examples(
        "Opted out of this tenant", request=_json({"phone": "13912345678"}),
        response=_json({"phone": "139****5678", "global": False, "tenant": True, "signature": False})),
    ("POST", "/v1/messages"): Examples(
        "Send one notification",
        request=_json({"to": "13812345678", "text": "【示例商城】您的订单已发货，请注意查收。", "kind": "notification",
                       "signature": "示例商城"}),
        response=_json(_MESSAGE_FULL)),
    ("GET", "/v1/messages"): Examples(
        "The newest messages (numbers masked)", response=_json({"messages": [_MESSAGE], "next_before": None})),
    ("GET", "/v1/messages/{message_id}"): Examples("One message and its delivery", response=_json(_MESSAGE_FULL)),
    ("POST", "/v1/verify"): Examples(
        "Send a code the platform generates", request=_json({"to": "13912345678", "signature": "示例商城"}),
        response=_json(_VERIFICATION | {"message": {"id": 2, "state": "scheduled"}})),
    ("POST", "/v1/verify/check"): Examples(
        "Check the code the user typed", request=_json({"to": "13912345678", "code": "482913"}),
        response=_json(_VERIFICATION | {"status": "verified", "attempts": 1, "attempts_left": 4,
                                        "verified_at": "2026-12-03T11:37:02.514220+00:00", "verified": True})),
    ("GET", "/v1/verify/{verification_id}"): Examples("A verification's state", response=_json(_VERIFICATION)),
    ("GET", "/v1/verify/stats"): Examples(
        "Conversion per signature and number prefix",
        response=_json({"sent": 1, "verified": 1, "conversion": 1.0, "rows": [
            {"signature": "示例商城", "prefix": "1391234", "sent": 1, "verified": 1, "conversion": 1.0}]})),
    ("GET", "/v1/verify/settings"): Examples("The tenant's code settings", response=_json(_VERIFY_SETTINGS)),
    ("PUT", "/v1/verify/settings"): Examples(
        "Six digits, valid five minutes", request=_json({"length": 6, "ttl_seconds": 300}),
        response=_json(_VERIFY_SETTINGS)),
    ("POST", "/v1/signatures"): Examples(
        "Apply with a business licence (multipart)", request={"multipart/form-data": _APPLICATION},
        response=_json(_SIGNATURE)),
    ("GET", "/v1/signatures"): Examples("The tenant's signatures", response=_json([_SIGNATURE])),
    ("GET", "/v1/signatures/{signature_id}"): Examples(
        "Rejected, with the reviewer's reason",
        response=_json(_SIGNATURE | {"status": "rejected", "reason": "营业执照已过期，请上传最新版本",
                                     "decided_at": "2026-12-03T12:02:10.113245"})),
    ("POST", "/v1/signatures/{signature_id}/resubmit"): Examples(
        "Resubmitted with a new document", request={"multipart/form-data": {"documents": ["%PDF-1.4 … %%EOF"]}},
        response=_json(_SIGNATURE)),
    ("GET", "/v1/signatures/{signature_id}/documents/{document_id}"): Examples(
        "The file as uploaded", response={"application/pdf": "%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
                                          "image/png": "\x89PNG\r\n\x1a\n…", "image/jpeg": "\xff\xd8\xff\xe0…"}),
    ("GET", "/v1/templates/{template_id}/versions"): Examples(
        "Newest first: an edit waiting for review over the approved text",
        response=_json([_VERSION, _VERSION | {"id": 1, "version": 1, "body": "【示例商城】您的订单{order}已发货。",
                                              "status": "approved", "created_at": "2026-12-03T11:49:16.627467",
                                              "decided_at": "2026-12-03T11:49:16.627467"}])),
    ("POST", "/v1/templates/{template_id}/versions"): Examples(
        "Edit the text (reviewed before it sends)",
        request=_json({"body": "【示例商城】您的订单{order}已发货，请注意查收。"}), response=_json(_VERSION)),
    ("POST", "/v1/complaints"): Examples(
        "A complaint (opts the number out)",
        request=_json({"phone": "13712345678", "text": "骚扰短信", "signature": "示例商城"}),
        response=_json({"id": 1, "repeat": False})),
    ("GET", "/v1/budget"): Examples("A budget of 5,000 CNY, nothing spent", response=_json(_BUDGET)),
    ("PUT", "/v1/budget"): Examples("Set it to 5,000 (admin key)", request=_json({"limit": 5000}),
                                    response=_json(_BUDGET)),
    ("GET", "/v1/balance"): Examples("100 topped up, 4.50 held for a batch", response=_json(_BALANCE)),
    ("GET", "/v1/ledger"): Examples("A top-up and a batch's hold", response=_json(
        {"currency": "CNY", "items": [_TOPUP, _ENTRY], "next_after": None})),
    ("GET", "/v1/prices"): Examples("The policy's prices (no price list of the tenant's own)", response=_json(
        {"currency": "CNY", "unit": "segment", "prices": dict.fromkeys(("verification", "notification",
                                                                        "marketing"), _PRICE_ROW)})),
    ("POST", "/v1/balance/topups"): Examples(
        "Top up 100 (admin key); the same reference again changes nothing",
        request=_json({"amount": 100, "reference": "pay-20261203-001", "memo": "bank transfer"}),
        response=_json({"entry": _TOPUP, "replayed": False} | {k: v for k, v in _BALANCE.items()
                                                                if k not in ("open_holds", "currency")})),
    ("PUT", "/v1/balance/settings"): Examples(
        "Alert below 10; charge on delivery (admin key)", request=_json({"low_balance": 10, "charge_on": "delivery"}),
        response=_json({k: v for k, v in _BALANCE.items() if k not in ("open_holds", "currency")}
                       | {"charge_on": "delivery"})),
    ("GET", "/v1/reconciliation"): Examples("Nothing waiting for a receipt", response=_json({"total": 0, "items": []})),
    ("GET", "/v1/channels"): Examples(
        "One CMPP channel", response=_json({"gateways": 1, "outbox": 0, "channels": [{
            "channel": "cmpp-main", "protocol": "cmpp", "state": "up", "processes": "1/1", "circuit": "closed",
            "throughput": 200, "rate_limit": 200.0, "outstanding_receipts": 0}]})),
    ("POST", "/v1/webhooks"): Examples(
        "Replies and opt-outs to a CRM (the signing secret is in this answer only)",
        request=_json({"url": "https://crm.example.com/hooks/smsguard", "events": ["mo.received", "optout.added"],
                       "description": "crm"}),
        response=_json(_WEBHOOK | {"secret": "whsec_o5PV0UhQdkAIeN9HSGkReMe673JkdHN5k197-NABoBI"})),
    ("GET", "/v1/webhooks"): Examples("One endpoint (no secret)", response=_json({"webhooks": [_WEBHOOK]})),
    ("GET", "/v1/webhooks/{webhook_id}"): Examples("One endpoint (no secret)", response=_json(_WEBHOOK)),
    ("PATCH", "/v1/webhooks/{webhook_id}"): Examples(
        "Every event type, two requests in flight at most", request=_json({"events": ["*"], "max_concurrency": 2}),
        response=_json(_WEBHOOK_PATCHED)),
    ("DELETE", "/v1/webhooks/{webhook_id}"): Examples(
        "Deleted, nothing was pending", response=_json({"id": 1, "deleted": True, "cancelled_deliveries": 0})),
    ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"): Examples(
        "A new secret; the old one still signs for an hour", request=_json({"grace_seconds": 3600}),
        response=_json(_WEBHOOK_PATCHED | {
            "previous_secret_valid_until": "2026-12-03T13:00:17.008411+00:00",
            "updated_at": "2026-12-03T12:00:17.008411+00:00",
            "secret": "whsec_Wfcwp3c1gWQfSHLKyrxeEf3gQlsS-I3a0jb35e7vQF4"})),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): Examples(
        "An MO reply delivered on the second attempt", response=_json({"deliveries": [_DELIVERY], "next_after": None})),
    ("GET", "/v1/webhooks/dead-letters"): Examples(
        "Given up after the retry window (the receiver kept answering 503)",
        response=_json({"deliveries": [_DEAD], "next_after": None})),
    ("GET", "/v1/webhooks/events/{event_id}"): Examples(
        "An MO 退订 (the number masked) as receivers get it", response=_json(_WEBHOOK_EVENT)),
    ("POST", "/v1/webhooks/events/{event_id}/resend"): Examples(
        "Deliver it again to one webhook, with the same event id", request=_json({"webhook_id": 1}),
        response=_json({"event_id": _EVENT_ID, "deliveries": [{"id": 3, "webhook_id": 1}]})),
    # anti-pumping (api/_pumping.py): the replayed block is of an unused prefix, so no other example is refused
    ("GET", "/v1/admin/pumping/rules"): Examples(
        "An office IP allow-listed for a day, an IRSF prefix blocked for a week (newest first)",
        response=_json({"rules": [_PUMP_BLOCK, _PUMP_ALLOW]})),
    ("POST", "/v1/admin/pumping/allow"): Examples(
        "Exempt the office's NAT address from the IP velocity rule for a day",
        request=_json({"scope": "ip", "value": "203.0.113.7", "note": "office NAT", "seconds": 86400}),
        response=_json(_PUMP_ALLOW)),
    ("POST", "/v1/admin/pumping/block"): Examples(
        "Block a 7-digit prefix pumped for premium-rate traffic for a week (sends to it answer 429)",
        request=_json({"scope": "prefix", "value": "1700000", "note": "IRSF", "seconds": 604800}),
        response=_json(_PUMP_BLOCK)),
    ("POST", "/v1/admin/pumping/lift"): Examples(
        "Lift the blocks on that prefix (allow-list entries stay unless allow_too)",
        request=_json({"scope": "prefix", "value": "1700000"}),
        response=_json({"lifted": [_PUMP_BLOCK | {"lifted_at": "2026-12-03T12:12:39.779737+00:00"}]})),
    # the vendor-compatible endpoints (api/_vendors.py): the vendors' SDKs build and sign these requests
    ("POST", "/"): Examples(
        "SendSms as either SDK sends it (Tencent: with X-TC-Action: SendSms)",
        request={JSON: _TENCENT_SEND, _FORM: _ALIYUN_SEND}, response=_json(_TENCENT_SENT)),
    ("POST", "/tencent"): Examples("Tencent Cloud SendSms (X-TC-Action: SendSms)", request=_json(_TENCENT_SEND),
                                   response=_json(_TENCENT_SENT)),
    ("POST", "/aliyun"): Examples("Aliyun SendSms (Action=SendSms)", request={_FORM: _ALIYUN_SEND},
                                  response=_json(_ALIYUN_SENT)),
}


def add_examples(app: Litestar) -> None:
    """Put the table's examples into the app's OpenAPI document. An operation missing from the table gets
    none (the test names it); a media type the table gives and the document lacks is an error here."""
    for path, item in (app.openapi_schema.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation: Operation | None = getattr(item, method, None)
            examples = EXAMPLES.get((method.upper(), path))
            if operation is None or examples is None:
                continue
            body = operation.request_body
            if examples.request and isinstance(body, RequestBody):
                _put(body.content, examples.request, examples.summary, f"{method} {path} request")
            response = next((r for s, r in sorted((operation.responses or {}).items()) if s.startswith("2")), None)
            if examples.response and isinstance(response, OpenAPIResponse):
                _put(response.content or {}, examples.response, examples.summary, f"{method} {path} response")


@dataclass
class _Example(Example):
    """An ``Example`` whose value is published as given: litestar's ``to_schema`` drops every None inside it, so a
    required field whose example is null would seem missing from the example."""

    def to_schema(self) -> dict[str, Any]:
        out = super().to_schema()
        if self.value is not None:
            out["value"] = self.value
        return out


def _put(content: dict[str, OpenAPIMediaType], values: dict[str, Any], summary: str, where: str) -> None:
    for media_type, value in values.items():
        targets = list(content.values()) if media_type == "*" else [content[media_type]]  # KeyError: see above
        assert targets, where
        for media in targets:
            media.examples = {"example": _Example(summary=summary, value=value)}
