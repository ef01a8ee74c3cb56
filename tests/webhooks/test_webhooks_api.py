"""The /v1/webhooks routes through the running app, on both backends: the CRUD flow with its audit events,
clear 4xx answers for bad input, 404 for another tenant's webhook or event on every route, and the events
the platform emits (MO replies and opt-outs over the API, review decisions) reaching a real receiver through
the real dispatcher, in order, with their delivery log, dead letters and re-sends read back over HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from test_dispatch import audit_kinds
from webhook_support import dispatchers, wait_for

from smsguard.webhooks import RetryPolicy

FAST = RetryPolicy(base=0.05, max_delay=0.2, window=600)


@pytest.fixture(scope="module")
def app(backend, migrated_db, shared_engine) -> Iterator[TestClient]:
    from smsguard.api import create_app

    with TestClient(create_app(shared_engine, settings=backend.settings(rate_limit=1_000_000))) as c:
        yield c


def _key(db, *, role: str = "client") -> tuple[dict[str, str], int]:
    from smsguard.storage import create_key, create_tenant

    t = create_tenant(db, f"wh-{uuid.uuid4().hex[:10]}")
    k, _ = create_key(db, t.name, role=role)
    return {"Authorization": f"Bearer {k}"}, t.id


def test_crud_flow_with_audit_events(app: TestClient, migrated_db) -> None:
    key, tid = _key(migrated_db)
    r = app.post("/v1/webhooks", headers=key, json={"url": "http://127.0.0.1:9/hook", "events": ["mo.received"],
                                                     "description": "crm"})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["mo.received"] and hook["enabled"]
    wid = hook["id"]
    got = app.get(f"/v1/webhooks/{wid}", headers=key).json()
    assert "secret" not in got and got["url"] == "http://127.0.0.1:9/hook"  # shown once
    assert [h["id"] for h in app.get("/v1/webhooks", headers=key).json()["webhooks"]] == [wid]
    r = app.patch(f"/v1/webhooks/{wid}", headers=key, json={"events": ["*"], "max_concurrency": 2})
    assert r.status_code == 200 and r.json()["events"] == ["*"] and r.json()["max_concurrency"] == 2
    r = app.patch(f"/v1/webhooks/{wid}", headers=key, json={"max_concurrency": 3.0})  # JSON Schema's integer
    assert r.status_code == 200 and r.json()["max_concurrency"] == 3 and isinstance(r.json()["max_concurrency"], int)
    r = app.post(f"/v1/webhooks/{wid}/rotate-secret", headers=key, json={"grace_seconds": 60})
    assert r.status_code == 200 and r.json()["secret"] != hook["secret"]
    assert r.json()["previous_secret_valid_until"] is not None
    assert app.get(f"/v1/webhooks/{wid}/deliveries", headers=key).json() == {"deliveries": [], "next_after": None}
    r = app.delete(f"/v1/webhooks/{wid}", headers=key)
    assert r.status_code == 200 and r.json() == {"id": wid, "deleted": True, "cancelled_deliveries": 0}
    assert app.get(f"/v1/webhooks/{wid}", headers=key).status_code == 404
    assert app.get(f"/v1/webhooks/{wid}/deliveries", headers=key).status_code == 200  # the log stays readable
    kinds = [k for k in audit_kinds(migrated_db, tid) if k.startswith("webhook.")]
    assert kinds == ["webhook.created", "webhook.updated", "webhook.updated", "webhook.secret_rotated",
                     "webhook.deleted"]


@pytest.mark.parametrize(("method", "path", "body", "where", "code"), [
    ("post", "/v1/webhooks", {"url": "ftp://x/y", "events": ["*"]}, "$.url", "input.schema"),
    ("post", "/v1/webhooks", {"url": "http://u:p@x/y", "events": ["*"]}, "$.url", "input.schema"),
    ("post", "/v1/webhooks", {"url": "http://x/y", "events": ["message.sent"]}, "$.events[0]", "input.schema"),
    ("post", "/v1/webhooks", {"url": "http://x/y", "events": []}, "$.events", "input.schema"),
    ("post", "/v1/webhooks", {"url": "http://x/y", "events": ["*"], "secret": "mine"}, "$.secret", "input.schema"),
    ("post", "/v1/webhooks", {"url": "http://x/y", "events": ["*"], "timeout": 600}, "$.timeout", "input.schema"),
    ("patch", "/v1/webhooks/{wid}", {"url": "nope"}, "$.url", "input.schema"),
    # the schema says the URL's rules (a port is a number), and max_concurrency a whole number (4.0 is fine)
    ("post", "/v1/webhooks", {"url": "http://x:0x/y", "events": ["*"]}, "$.url", "input.schema"),
    ("post", "/v1/webhooks", {"url": "http://x/y", "events": ["*"], "max_concurrency": 2.5}, "$.max_concurrency",
     "input.schema"),
    ("post", "/v1/webhooks/{wid}/rotate-secret", {"grace_seconds": -1}, "$.grace_seconds", "input.schema"),
    ("get", "/v1/webhooks/{wid}/deliveries?status=lost", None, "query status", "input.schema"),
    ("get", "/v1/webhooks/{wid}/deliveries?limit=0", None, "query limit", "input.schema"),
    ("post", "/v1/webhooks/events/evt_nothing/resend", {}, "path event_id", "webhooks.event_not_found"),
    ("get", "/v1/webhooks/99999999", None, "path webhook_id", "webhooks.not_found"),
])
def test_bad_input_is_a_clear_4xx(app: TestClient, migrated_db, method, path, body, where, code) -> None:
    key, _ = _key(migrated_db)
    wid = app.post("/v1/webhooks", headers=key, json={"url": "http://127.0.0.1:9/h", "events": ["*"]}).json()["id"]
    r = app.request(method.upper(), path.format(wid=wid), headers=key, **({"json": body} if body is not None else {}))
    assert 400 <= r.status_code < 500, r.text
    out = r.json()
    assert set(out) == {"code", "message", "where"} and out["message"]
    assert (out["where"], out["code"]) == (where, code), out


def test_another_tenants_webhook_and_events_are_404_on_every_route(app: TestClient, migrated_db, emit) -> None:
    key_a, tid_a = _key(migrated_db)
    key_b, _ = _key(migrated_db)
    wid = app.post("/v1/webhooks", headers=key_a, json={"url": "http://127.0.0.1:9/h", "events": ["*"]}).json()["id"]
    event_id = emit(tid_a, "mo.received", "phone:x", {"text": "hi"})
    assert app.get(f"/v1/webhooks/events/{event_id}", headers=key_a).json()["id"] == event_id
    for method, path, body in [
        ("GET", f"/v1/webhooks/{wid}", None),
        ("PATCH", f"/v1/webhooks/{wid}", {"enabled": False}),
        ("DELETE", f"/v1/webhooks/{wid}", None),
        ("POST", f"/v1/webhooks/{wid}/rotate-secret", {}),
        ("GET", f"/v1/webhooks/{wid}/deliveries", None),
        ("GET", f"/v1/webhooks/events/{event_id}", None),
        ("POST", f"/v1/webhooks/events/{event_id}/resend", {}),
        ("POST", f"/v1/webhooks/events/{event_id}/resend", {"webhook_id": wid}),
    ]:
        r = app.request(method, path, headers=key_b, **({"json": body} if body is not None else {}))
        assert r.status_code == 404, (method, path, r.text)
    assert app.get("/v1/webhooks", headers=key_b).json() == {"webhooks": []}
    assert app.get("/v1/webhooks/dead-letters", headers=key_b).json()["deliveries"] == []
    r = app.post(f"/v1/webhooks/events/{event_id}/resend", headers=key_b, json={"webhook_id": wid})
    assert r.json()["code"] in ("webhooks.event_not_found", "webhooks.not_found")
    assert app.get(f"/v1/webhooks/{wid}", headers=key_a).json()["enabled"] is True  # untouched


def test_mo_opt_out_reaches_the_receiver_in_order_with_its_log(app: TestClient, migrated_db, receiver) -> None:
    """An MO 退订 over /v1/inbound: mo.received then optout.added, same subject, in that order; the first
    attempt fails, so the log shows two attempts, and the opt-out waited for the reply's retry."""
    key, tid = _key(migrated_db)
    path = f"/mo-{tid}"
    hook = app.post("/v1/webhooks", headers=key, json={"url": receiver.url(path),
                                                      "events": ["mo.received", "optout.added"]}).json()
    receiver.script(path, ["500"])
    r = app.post("/v1/inbound", headers=key, json={"phone": "13912345678", "text": "退订", "signature": "示例商城"})
    assert r.status_code == 200 and r.json()["action"] == "opt_out"
    with dispatchers(migrated_db, retry=FAST):
        wait_for(lambda: len([x for x in receiver.log(path) if x["action"] == "200"]) == 2, what="both events")
    log = receiver.log(path)
    types = [(x["headers"]["x-smsguard-event-type"], x["action"]) for x in log]
    assert types == [("mo.received", "500"), ("mo.received", "200"), ("optout.added", "200")]
    mo, optout = json.loads(log[1]["body"]), json.loads(log[2]["body"])
    assert log[0]["headers"]["x-smsguard-event-id"] == log[1]["headers"]["x-smsguard-event-id"] == mo["id"]
    assert mo["data"]["phone"] == "139****5678" and mo["data"]["text"] == "退订" and mo["data"]["action"] == "opt_out"
    assert optout["data"]["scope"] == "signature" and optout["subject"] == mo["subject"]
    assert "13912345678" not in "".join(x["body"] for x in log)  # masked only
    out = app.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=key).json()["deliveries"]
    assert [(d["event_type"], d["status"], d["attempts"]) for d in out] == [("mo.received", "delivered", 2),
                                                                             ("optout.added", "delivered", 1)]
    assert [a["status_code"] for a in out[0]["attempt_log"]] == [500, 200]
    assert out[0]["attempt_log"][0]["error"] == "HTTP 500"
    # a manual re-send over the API: the same event id once more
    r = app.post(f"/v1/webhooks/events/{mo['id']}/resend", headers=key, json={})
    assert r.status_code == 200 and len(r.json()["deliveries"]) == 1
    with dispatchers(migrated_db, retry=FAST):
        wait_for(lambda: len(receiver.log(path)) == 4, what="the re-send")
    assert receiver.log(path)[3]["headers"]["x-smsguard-event-id"] == mo["id"]
    assert "webhook.resent" in audit_kinds(migrated_db, tid)


def test_dead_letters_are_listed_over_the_api(app: TestClient, migrated_db, receiver, emit) -> None:
    key, tid = _key(migrated_db)
    path = f"/dead-{tid}"
    app.post("/v1/webhooks", headers=key, json={"url": receiver.url(path), "events": ["*"], "timeout": 0.5})
    receiver.script(path, [], default="close")
    event_id = emit(tid, "budget.exceeded", f"budget:{tid}", {"remaining": "0.0000"})
    with dispatchers(migrated_db, retry=RetryPolicy(base=0.05, max_delay=0.1, window=0.3)):
        wait_for(lambda: app.get("/v1/webhooks/dead-letters", headers=key).json()["deliveries"], what="dead")
    [d] = app.get("/v1/webhooks/dead-letters", headers=key).json()["deliveries"]
    assert d["event_id"] == event_id and d["status"] == "dead" and d["last_error"].startswith("RemoteProtocolError")


def test_a_review_decision_on_the_tenants_content_is_an_event(migrated_db, receiver, tenant, backend) -> None:
    import redis

    from smsguard import review, webhooks
    from smsguard.review import ReviewConfig
    from smsguard.review._queue import Queue
    from smsguard.review._service import ReviewService
    from smsguard.review._users import create_user

    path = f"/review-{tenant}"
    webhooks.create_endpoint(migrated_db, tenant, url=receiver.url(path), events=["review.decided"], actor="test")
    r = redis.Redis.from_url(backend.redis_url)
    try:
        config = ReviewConfig(lease_seconds=30)
        service = ReviewService(migrated_db, Queue(migrated_db, r, namespace=f"{backend.namespace}:wh{tenant}",
                                                   config=config), config)
        with migrated_db.begin() as conn:
            item = review.submit(conn, tenant_id=tenant, source="test", source_ref=uuid.uuid4().hex,
                                 text="【测试】低息贷款", verdict={"decision": "review", "score": 0.6, "reasons": []},
                                 priority=0, batch_size=0, sample_recipients=[])
        user = create_user(migrated_db, f"rev-{uuid.uuid4().hex[:6]}", "correct horse battery", "reviewer")
        service.decide(user, item, version=service._row(item).version, action="reject", reason="loan ad")
    finally:
        r.close()
    with dispatchers(migrated_db, retry=FAST):
        [got] = wait_for(lambda: receiver.log(path), what="the decision")
    body = json.loads(got["body"])
    assert body["type"] == "review.decided" and body["subject"] == f"review:{item}"
    assert body["data"]["decision"] == "rejected" and body["data"]["reason"] == "loan ad"


def test_signature_filing_reaches_the_receiver(app: TestClient, migrated_db, receiver) -> None:
    """Issue 19: a signature's status changes (filed, rejected with the reviewer's reason) are webhook events of
    the tenant, delivered in order under the signature's subject."""
    import os

    from smsguard import filing

    key, tid = _key(migrated_db)
    path = f"/sig-{tid}"
    app.post("/v1/webhooks", headers=key, json={"url": receiver.url(path), "events": ["signature.status"]})
    vault = filing.DocumentVault([(1, os.urandom(32))])
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    sig = filing.apply(migrated_db, vault, tid, name=f"商城{tid}", kind="company", use="self",
                       files=[("licence.pdf", pdf)], actor="test")
    filing.decide(migrated_db, sig["id"], approve=False, reason="营业执照已过期", reviewer="user:senior")
    with dispatchers(migrated_db, retry=FAST):
        wait_for(lambda: len(receiver.log(path)) == 2, what="both signature events")
    bodies = [json.loads(x["body"]) for x in receiver.log(path)]
    assert [(b["type"], b["data"]["status"]) for b in bodies] == [("signature.status", "pending"),
                                                                  ("signature.status", "rejected")]
    assert bodies[1]["data"]["reason"] == "营业执照已过期" and bodies[0]["subject"] == f"signature:{sig['id']}"
