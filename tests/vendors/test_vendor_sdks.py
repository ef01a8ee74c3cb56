"""The drop-in Tencent Cloud SMS and Aliyun SMS endpoints, called by the vendors' own SDKs from PyPI
(``tencentcloud-sdk-python-sms``, ``alibabacloud_dysmsapi20170525``: code no one here wrote) over HTTP against a
real ``smsguard serve`` process (api, release, gateway on the loopback channel, relay), on SQLite and PostgreSQL.

Success, bad signatures, blocked content, unknown templates, and the status pulls after a real release and
loopback delivery (loopback reports numbers ending 9003 undelivered)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from alibabacloud_dysmsapi20170525 import models as ali_models
from alibabacloud_dysmsapi20170525.client import Client as AliClient
from alibabacloud_tea_openapi import utils_models as ali_config
from alibabacloud_tea_openapi.exceptions import ClientException
from serve_support import SMSGUARD, free_port, start, stop, wait_ready
from sqlalchemy import select, text
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tc_models
from tencentcloud.sms.v20210111 import sms_client

SIGN = "示例商城"
BODY = "您好${name}，您的订单${order}已发货。"
DELIVERED, UNDELIVERED = "13800138001", "13900009003"  # loopback reports …9003 undelivered


@dataclasses.dataclass
class Live:
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclasses.dataclass
class Tenant:
    name: str
    id: int
    key: str
    template: int
    tencent_id: str
    tencent_secret: str
    app_id: str
    aliyun_id: str
    aliyun_secret: str


@pytest.fixture(scope="module")
def live(backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from smsguard.storage import migrate

    migrate(backend.db)
    log = tmp_path_factory.mktemp("vendor-serve") / "serve.log"
    port = free_port()
    proc = start(["serve", "--port", str(port)], backend.env(SMSGUARD_NODE=f"vendors-{backend.name}"), log)
    try:
        wait_ready(port, proc, log, timeout=90)
        yield Live(port, proc, log)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def new_tenant(backend, live: Live) -> Callable[[], Tenant]:
    from smsguard.runtime import Runtime
    from smsguard.storage import create_key, create_tenant
    from smsguard.vendors import create_credential

    vault = Runtime(backend.settings()).vault

    def make() -> Tenant:
        tenant = create_tenant(backend.db, f"vendors-{uuid.uuid4().hex[:10]}", rate_limit=1_000_000)
        key, _ = create_key(backend.db, tenant.name)
        r = httpx.post(f"{live.base}/v1/templates", headers={"Authorization": f"Bearer {key}"}, timeout=60,
                       json={"name": "order", "kind": "notification", "signature": SIGN, "body": BODY})
        assert r.status_code == 201 and r.json()["status"] == "approved", r.text
        tc, tc_secret = create_credential(backend.db, vault, tenant.name, "tencent", label="test")
        ali, ali_secret = create_credential(backend.db, vault, tenant.name, "aliyun", label="test")
        return Tenant(tenant.name, tenant.id, key, r.json()["id"], tc.access_id, tc_secret, tc.app_id,
                      ali.access_id, ali_secret)

    return make


@pytest.fixture(scope="module")
def tenant(new_tenant: Callable[[], Tenant]) -> Tenant:
    return new_tenant()


def tencent(live: Live, secret_id: str, secret_key: str) -> sms_client.SmsClient:
    """The SDK as a customer repoints it: endpoint = smsguard's host:port, plain HTTP in the tests."""
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=f"127.0.0.1:{live.port}", protocol="http"))
    return sms_client.SmsClient(credential.Credential(secret_id, secret_key), "ap-guangzhou", profile)


def aliyun(live: Live, key_id: str, secret: str, algorithm: str | None = None) -> AliClient:
    """``algorithm=None``: the SDK's default V3 ACS3-HMAC-SHA256; ``"v2"``: the RPC HMAC-SHA1 signature."""
    return AliClient(ali_config.Config(access_key_id=key_id, access_key_secret=secret,
                                       endpoint=f"127.0.0.1:{live.port}", protocol="http",
                                       signature_algorithm=algorithm))


def tc_send(client: sms_client.SmsClient, t: Tenant, numbers: list[str], params: list[str], *,
            template: str | None = None, app_id: str | None = None, context: str | None = None) -> dict:
    req = tc_models.SendSmsRequest()
    req.PhoneNumberSet = numbers
    req.SmsSdkAppId = app_id or t.app_id
    req.TemplateId = str(t.template) if template is None else template
    req.SignName = SIGN
    req.TemplateParamSet = params
    req.SessionContext = context
    return json.loads(client.SendSms(req).to_json_string())


def tc_error(call: Callable[[], Any]) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value


def pull_status(client: sms_client.SmsClient, t: Tenant, want: int, timeout: float = 90.0) -> list[dict]:
    """PullSmsSendStatus until ``want`` reports came (each report is answered once)."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        req = tc_models.PullSmsSendStatusRequest()
        req.Limit = 100
        req.SmsSdkAppId = t.app_id
        got += json.loads(client.PullSmsSendStatus(req).to_json_string())["PullSmsSendStatusSet"]
        if len(got) < want:
            time.sleep(0.3)
    return got


def audit_events(backend, tenant_id: int, event_type: str) -> list[Any]:
    with backend.db.connect() as conn:
        return conn.execute(
            text("SELECT subject, payload FROM audit_events WHERE tenant_id = :t AND event_type = :e ORDER BY id"),
            {"t": tenant_id, "e": event_type},
        ).all()


# -- Tencent Cloud SMS -----------------------------------------------------------------------------------


def test_tencent_send_then_pull_the_delivery_reports_after_a_real_release(backend, live: Live, tenant: Tenant):
    client = tencent(live, tenant.tencent_id, tenant.tencent_secret)
    answer = tc_send(client, tenant, ["+86" + DELIVERED, UNDELIVERED, "12345"], ["张三", "A123"], context="ctx-1")
    sent = answer["SendStatusSet"]
    assert [s["Code"] for s in sent] == ["Ok", "Ok", "InvalidParameterValue.IncorrectPhoneNumber"]
    assert [s["Fee"] for s in sent] == [1, 1, 0] and all(s["SessionContext"] == "ctx-1" for s in sent)
    batch_id = int(sent[0]["SerialNo"].split("-")[0])
    assert [s["SerialNo"] for s in sent] == [f"{batch_id}-1", f"{batch_id}-2", f"{batch_id}-3"]
    # a smsguard batch like any other: the customer's API key sees it, rendered and screened
    batch = httpx.get(f"{live.base}/v1/batches/{batch_id}", headers={"Authorization": f"Bearer {tenant.key}"}).json()
    assert batch["template_id"] == tenant.template and batch["contents"][0]["decision"] == "pass"
    [(subject, payload)] = audit_events(backend, tenant.id, "vendor.send")
    assert subject == f"batch:{batch_id}" and json.loads(payload)["vendor"] == "tencent"

    reports = pull_status(client, tenant, want=2)
    by_serial = {r["SerialNo"]: r for r in reports}
    assert set(by_serial) == {f"{batch_id}-1", f"{batch_id}-2"}
    ok, failed = by_serial[f"{batch_id}-1"], by_serial[f"{batch_id}-2"]
    assert (ok["ReportStatus"], ok["Description"], ok["PhoneNumber"]) == ("SUCCESS", "DELIVRD", "+86138****8001")
    assert failed["ReportStatus"] == "FAIL" and failed["SubscriberNumber"] == "139****9003"
    assert ok["SessionContext"] == "ctx-1" and ok["UserReceiveTime"]
    assert pull_status(client, tenant, want=1, timeout=1.0) == []  # pulled once, as Tencent does
    assert audit_events(backend, tenant.id, "vendor.status_pulled")


def test_tencent_pulls_mo_replies(live: Live, tenant: Tenant) -> None:
    r = httpx.post(f"{live.base}/v1/inbound", headers={"Authorization": f"Bearer {tenant.key}"},
                   json={"phone": DELIVERED, "text": "好的，收到", "signature": SIGN, "id": uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    client = tencent(live, tenant.tencent_id, tenant.tencent_secret)
    req = tc_models.PullSmsReplyStatusRequest()
    req.Limit = 10
    req.SmsSdkAppId = tenant.app_id
    [reply] = json.loads(client.PullSmsReplyStatus(req).to_json_string())["PullSmsReplyStatusSet"]
    assert (reply["ReplyContent"], reply["SignName"], reply["PhoneNumber"]) == ("好的，收到", SIGN, "+86138****8001")
    assert json.loads(client.PullSmsReplyStatus(req).to_json_string())["PullSmsReplyStatusSet"] == []


def test_tencent_bad_signature_unknown_id_and_wrong_app(live: Live, tenant: Tenant) -> None:
    wrong_key = tencent(live, tenant.tencent_id, "x" * 32)
    e = tc_error(lambda: tc_send(wrong_key, tenant, [DELIVERED], ["a", "b"]))
    assert e.get_code() == "AuthFailure.SignatureFailure"
    e = tc_error(lambda: tc_send(tencent(live, "AKIDnobody", "x"), tenant, [DELIVERED], ["a", "b"]))
    assert e.get_code() == "AuthFailure.SecretIdNotFound"
    ok = tencent(live, tenant.tencent_id, tenant.tencent_secret)
    e = tc_error(lambda: tc_send(ok, tenant, [DELIVERED], ["a", "b"], app_id="1400000000"))
    assert e.get_code() == "UnauthorizedOperation.SmsSdkAppIdVerifyFail"


def test_tencent_blocked_content_names_smsguards_reasons(backend, live: Live, tenant: Tenant) -> None:
    client = tencent(live, tenant.tencent_id, tenant.tencent_secret)
    e = tc_error(lambda: tc_send(client, tenant, [DELIVERED], ["赌场贵宾", "A1"]))
    assert e.get_code() == "FailedOperation.ContainSensitiveWord"
    assert "lexicon.gambling" in e.get_message() and "赌场" in e.get_message()
    batch_id = int(e.get_message().split("(batch ")[1].split(")")[0])
    batch = httpx.get(f"{live.base}/v1/batches/{batch_id}", headers={"Authorization": f"Bearer {tenant.key}"}).json()
    assert batch["state"] == "cancelled" and batch["counts"] == {"rejected": 1}  # never sent, and audited
    assert any(s == f"batch:{batch_id}" for s, _ in audit_events(backend, tenant.id, "batch.cancelled"))


def test_tencent_unknown_or_unapproved_template_and_wrong_parameters(live: Live, tenant: Tenant) -> None:
    client = tencent(live, tenant.tencent_id, tenant.tencent_secret)
    for template in ("999999", "SMS_1", ""):
        e = tc_error(lambda template=template: tc_send(client, tenant, [DELIVERED], ["a", "b"], template=template))
        assert e.get_code() == "FailedOperation.TemplateIncorrectOrUnapproved", template
    blocked = httpx.post(f"{live.base}/v1/templates", headers={"Authorization": f"Bearer {tenant.key}"},
                         json={"name": "bad", "kind": "notification", "signature": SIGN, "body": "赌场开业${x}"}).json()
    assert blocked["status"] == "blocked"
    e = tc_error(lambda: tc_send(client, tenant, [DELIVERED], ["a"], template=str(blocked["id"])))
    assert e.get_code() == "FailedOperation.TemplateIncorrectOrUnapproved" and "blocked" in e.get_message()
    e = tc_error(lambda: tc_send(client, tenant, [DELIVERED], ["only one"]))
    assert e.get_code() == "InvalidParameterValue.TemplateParameterFormatError"
    e = tc_error(lambda: tc_send(client, tenant, [DELIVERED] * 201, ["a", "b"]))
    assert e.get_code() == "LimitExceeded.PhoneNumberCountLimit"
    e = tc_error(lambda: tc_send(client, tenant, [DELIVERED], ["a" * 101, "b"]))
    assert e.get_code() == "InvalidParameterValue.TemplateParameterLengthLimit"


# -- Aliyun SMS ------------------------------------------------------------------------------------------


def beijing_today() -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")


def ali_send(client: AliClient, t: Tenant, phones: str, params: dict[str, str], template: str | None = None,
             out_id: str | None = None) -> dict:
    request = ali_models.SendSmsRequest(phone_numbers=phones, sign_name=SIGN,
                                        template_code=template or f"SMS_{t.template}",
                                        template_param=json.dumps(params, ensure_ascii=False), out_id=out_id)
    return client.send_sms(request).body.to_map()


def query_details(client: AliClient, phone: str, biz_id: str | None, want_final: int,
                  timeout: float = 90.0) -> dict:
    """QuerySendDetails until ``want_final`` rows are no longer waiting (SendStatus 1)."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.query_send_details(ali_models.QuerySendDetailsRequest(
            phone_number=phone, send_date=beijing_today(), page_size=50, current_page=1, biz_id=biz_id)).body.to_map()
        rows = body["SmsSendDetailDTOs"]["SmsSendDetailDTO"]
        if sum(r["SendStatus"] != 1 for r in rows) >= want_final or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["acs3-hmac-sha256", "rpc-hmac-sha1"])
def test_aliyun_send_then_query_details_after_a_real_release(live: Live, tenant: Tenant, algorithm) -> None:
    client = aliyun(live, tenant.aliyun_id, tenant.aliyun_secret, algorithm)
    answer = ali_send(client, tenant, f"{DELIVERED},{UNDELIVERED}", {"name": "李四", "order": "B 9+9&x=1"},
                      out_id="out-7")
    assert answer["Code"] == "OK" and answer["Message"] == "OK" and answer["BizId"].isdigit()
    body = query_details(client, UNDELIVERED, answer["BizId"], want_final=1)
    assert body["Code"] == "OK" and body["TotalCount"] == 1
    [row] = body["SmsSendDetailDTOs"]["SmsSendDetailDTO"]
    assert (row["SendStatus"], row["PhoneNum"], row["OutId"]) == (2, "139****9003", "out-7")
    assert row["Content"] == "【示例商城】您好李四，您的订单B 9+9&x=1已发货。"
    body = query_details(client, DELIVERED, answer["BizId"], want_final=1)
    [row] = body["SmsSendDetailDTOs"]["SmsSendDetailDTO"]
    assert (row["SendStatus"], row["ErrCode"], row["TemplateCode"]) == (3, "DELIVERED", f"SMS_{tenant.template}")


def test_aliyun_send_batch_one_biz_id_for_every_content(live: Live, tenant: Tenant) -> None:
    client = aliyun(live, tenant.aliyun_id, tenant.aliyun_secret)
    numbers = ["13800138011", "13800138012", "13800138013"]
    body = client.send_batch_sms(ali_models.SendBatchSmsRequest(
        phone_number_json=json.dumps(numbers), sign_name_json=json.dumps([SIGN] * 3, ensure_ascii=False),
        template_code=str(tenant.template),
        template_param_json=json.dumps([{"name": "甲", "order": "1"}, {"name": "乙", "order": "2"},
                                        {"name": "甲", "order": "1"}], ensure_ascii=False))).body.to_map()
    assert body["Code"] == "OK", body
    row = query_details(client, numbers[1], body["BizId"], want_final=1)["SmsSendDetailDTOs"]["SmsSendDetailDTO"]
    assert [r["Content"] for r in row] == ["【示例商城】您好乙，您的订单2已发货。"] and row[0]["SendStatus"] == 3


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["acs3-hmac-sha256", "rpc-hmac-sha1"])
def test_aliyun_bad_signature_and_unknown_key(live: Live, tenant: Tenant, algorithm) -> None:
    for key_id, secret, code, status in [(tenant.aliyun_id, "wrong-secret", "SignatureDoesNotMatch", 400),
                                         ("LTAInobody", "x", "InvalidAccessKeyId.NotFound", 404)]:
        with pytest.raises(ClientException) as info:
            ali_send(aliyun(live, key_id, secret, algorithm), tenant, DELIVERED, {"name": "a", "order": "b"})
        assert (info.value.code, info.value.status_code) == (code, status)


def test_aliyun_blocked_content_unknown_template_and_bad_number(live: Live, tenant: Tenant) -> None:
    client = aliyun(live, tenant.aliyun_id, tenant.aliyun_secret)
    blocked = ali_send(client, tenant, DELIVERED, {"name": "赌场贵宾", "order": "1"})
    assert blocked["Code"] == "isv.BLACK_KEY_CONTROL_LIMIT" and "lexicon.gambling" in blocked["Message"]
    assert ali_send(client, tenant, DELIVERED, {}, template="SMS_999999")["Code"] == "isv.SMS_TEMPLATE_ILLEGAL"
    assert ali_send(client, tenant, DELIVERED, {"name": "a"})["Code"] == "isv.TEMPLATE_MISSING_PARAMETERS"
    assert ali_send(client, tenant, DELIVERED, {"name": "a" * 101, "order": "b"})["Code"] == "isv.PARAM_LENGTH_LIMIT"
    bad = ali_send(client, tenant, f"{DELIVERED},12345", {"name": "a", "order": "b"})
    assert bad["Code"] == "isv.MOBILE_NUMBER_ILLEGAL"
    wrong_sign = client.send_sms(ali_models.SendSmsRequest(
        phone_numbers=DELIVERED, sign_name="别家", template_code=str(tenant.template),
        template_param=json.dumps({"name": "a", "order": "b"}))).body.to_map()
    assert wrong_sign["Code"] == "isv.SMS_SIGNATURE_ILLEGAL"


# -- across tenants, replays, and what an API key opens ----------------------------------------------------


def test_another_tenants_credentials_see_nothing_of_this_tenant(live: Live, tenant: Tenant, new_tenant) -> None:
    other = new_tenant()
    e = tc_error(lambda: tc_send(tencent(live, other.tencent_id, other.tencent_secret), other, [DELIVERED],
                                 ["a", "b"], template=str(tenant.template)))
    assert e.get_code() == "FailedOperation.TemplateIncorrectOrUnapproved"  # the other tenant's id: not found
    e = tc_error(lambda: tc_send(tencent(live, other.tencent_id, other.tencent_secret), tenant, [DELIVERED],
                                 ["a", "b"]))  # this tenant's SmsSdkAppId with the other's SecretId
    assert e.get_code() == "UnauthorizedOperation.SmsSdkAppIdVerifyFail"
    client = aliyun(live, other.aliyun_id, other.aliyun_secret)
    assert ali_send(client, other, DELIVERED, {}, template=f"SMS_{tenant.template}")["Code"] == \
        "isv.SMS_TEMPLATE_ILLEGAL"
    body = client.query_send_details(ali_models.QuerySendDetailsRequest(
        phone_number=DELIVERED, send_date=beijing_today(), page_size=50, current_page=1)).body.to_map()
    assert body["TotalCount"] == 0
    other_tc = tencent(live, other.tencent_id, other.tencent_secret)
    assert pull_status(other_tc, other, want=1, timeout=1.0) == []
    req = tc_models.PullSmsReplyStatusRequest()
    req.Limit = 100
    req.SmsSdkAppId = other.app_id
    assert json.loads(other_tc.PullSmsReplyStatus(req).to_json_string())["PullSmsReplyStatusSet"] == []


class _Capture(BaseHTTPRequestHandler):
    """Records the one request an SDK sends (to replay it to smsguard) and answers like Aliyun would."""

    seen: ClassVar[list[tuple[str, str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        _Capture.seen.append((self.command, self.path, dict(self.headers.items()), body))
        out = (b'{"Response":{"SendStatusSet":[],"RequestId":"x"}}' if "X-TC-Action" in self.headers
               else b'{"Code":"OK","Message":"OK","BizId":"0","RequestId":"x"}')
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_: Any) -> None:
        pass


def _captured(send: Callable[[int], Any]) -> tuple[str, str, dict[str, str], bytes]:
    """The one request an SDK sends to a local recorder on port ``send``'s argument."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _Capture.seen.clear()
        send(server.server_port)
    finally:
        server.shutdown()
    [request] = _Capture.seen
    return request


def test_a_replayed_aliyun_request_is_refused(live: Live, tenant: Tenant) -> None:
    """The SDK's own signed request, captured and sent to smsguard twice: the nonce is accepted once."""
    def send(port: int) -> None:
        capture = AliClient(ali_config.Config(access_key_id=tenant.aliyun_id, access_key_secret=tenant.aliyun_secret,
                                              endpoint=f"127.0.0.1:{port}", protocol="http"))
        ali_send(capture, tenant, DELIVERED, {"name": "重放", "order": "1"})

    method, path, headers, body = _captured(send)
    answers = [httpx.request(method, f"{live.base}{path}", headers=headers, content=body) for _ in range(2)]
    assert answers[0].status_code == 200 and answers[0].json()["Code"] == "OK", answers[0].text
    assert answers[1].status_code == 400 and answers[1].json()["Code"] == "SignatureNonceUsed"
    tampered = path.replace("%E9%87%8D%E6%94%BE", "%E7%AF%A1%E6%94%B9")  # 重放 → 篡改 in TemplateParam
    assert tampered != path
    r = httpx.request(method, f"{live.base}{tampered}", headers=headers, content=body)
    assert r.status_code == 400 and r.json()["Code"] == "SignatureDoesNotMatch"


def test_a_replayed_or_stale_tencent_request_is_refused(backend, live: Live, tenant: Tenant) -> None:
    """TC3 has no nonce: the SDK's signed request is taken once, and not at all 5 minutes after its timestamp
    (judged by the handler with a later clock: the server's own clock cannot be moved)."""
    import redis

    from smsguard.batches import Context
    from smsguard.runtime import Runtime
    from smsguard.vendors import tencent as tencent_api

    method, path, headers, body = _captured(
        lambda port: tc_send(tencent(dataclasses.replace(live, port=port), tenant.tencent_id, tenant.tencent_secret),
                             tenant, [DELIVERED], ["重放", "1"]))
    answers = [httpx.request(method, f"{live.base}{path}", headers=headers, content=body).json()["Response"]
               for _ in range(2)]
    assert answers[0]["SendStatusSet"][0]["Code"] == "Ok", answers[0]
    assert answers[1]["Error"]["Code"] == "AuthFailure.SignatureFailure" and "replay" in answers[1]["Error"]["Message"]
    client = redis.Redis.from_url(backend.redis_url)
    try:
        ctx = Context(db=backend.db, redis=client, vault=Runtime(backend.settings()).vault, namespace=backend.namespace)
        lower = {k.lower(): v for k, v in headers.items()}
        late = tencent_api.handle(ctx, method=method, query="", headers=lower, body=body,
                                  now=int(lower["x-tc-timestamp"]) + 301)
    finally:
        client.close()
    assert late["Response"]["Error"]["Code"] == "AuthFailure.SignatureExpire"


def test_an_api_key_opens_no_vendor_endpoint_and_garbage_is_a_vendor_error(live: Live, tenant: Tenant) -> None:
    bearer = {"Authorization": f"Bearer {tenant.key}"}
    r = httpx.post(f"{live.base}/", headers=bearer, content=b"PhoneNumbers=13800138001")
    assert r.status_code == 400 and r.json()["Code"] == "IncompleteSignature"
    r = httpx.post(f"{live.base}/tencent", headers={**bearer, "X-TC-Action": "SendSms"}, content=b"{}")
    assert r.status_code == 200 and r.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    fake_tc3 = ("TC3-HMAC-SHA256 Credential=" + tenant.tencent_id + "/2026-01-01/sms/tc3_request, "
                "SignedHeaders=content-type;host, Signature=" + "0" * 64)
    for path in ("/", "/tencent", "/aliyun", "/?Signature=1&AccessKeyId=%00", "/?a=1&a=2"):
        for headers, body in [({}, b""), ({"X-TC-Action": "SendSms"}, b"{"), ({"X-TC-Action": "Nope"}, b"[]"),
                              ({"Content-Type": "application/x-www-form-urlencoded"}, b"\xff=\xfe"),
                              ({"X-TC-Action": "SendSms", "Authorization": fake_tc3, "X-TC-Timestamp": "99999999999"},
                               b'{"PhoneNumberSet": [[[[]]]]}'),
                              ({"Authorization": "ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host,Signature=00"},
                               b"\x00")]:
            r = httpx.post(f"{live.base}{path}", headers=headers, content=body)
            assert r.status_code in (200, 400, 404), (path, headers, r.status_code, r.text)
            answer = r.json()
            assert ("Response" in answer and "Error" in answer["Response"]) or answer["Code"] != "OK", answer


def test_cli_creates_lists_and_revokes_vendor_credentials(backend, live: Live, tenant: Tenant) -> None:
    env = backend.env()
    made = subprocess.run([*SMSGUARD, "key", "vendor", "create", "--tenant", tenant.name, "--vendor", "tencent",
                           "--app-id", "1400123456", "--label", "ci"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    fields = dict(line.split(":", 1) for line in made.stdout.splitlines()[1:])
    secret_id, secret_key = fields["SecretId"].strip(), fields["SecretKey"].strip()
    assert fields["SmsSdkAppId"].strip() == "1400123456"
    listed = subprocess.run([*SMSGUARD, "key", "vendor", "list", "--tenant", tenant.name], env=env,
                            capture_output=True, text=True, timeout=120)
    assert secret_id in listed.stdout and secret_key not in listed.stdout
    with backend.db.connect() as conn:  # stored encrypted: the secret is not in the row
        from smsguard.vendors._tables import credentials

        stored = conn.execute(select(credentials.c.secret_enc).where(credentials.c.access_id == secret_id)).scalar_one()
    assert secret_key.encode() not in bytes(stored)
    t = dataclasses.replace(tenant, tencent_id=secret_id, tencent_secret=secret_key, app_id="1400123456")
    client = tencent(live, secret_id, secret_key)
    assert tc_send(client, t, [DELIVERED], ["a", "b"])["SendStatusSet"][0]["Code"] == "Ok"
    revoked = subprocess.run([*SMSGUARD, "key", "vendor", "revoke", secret_id], env=env, capture_output=True,
                             text=True, timeout=120)
    assert revoked.returncode == 0, revoked.stderr
    assert tc_error(lambda: tc_send(client, t, [DELIVERED], ["a", "b"])).get_code() == "AuthFailure.SecretIdNotFound"
