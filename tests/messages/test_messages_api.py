"""POST/GET /v1/messages through the running app, on both backends: the one-recipient batch path (screening,
review, opt-outs, budget), the list by number / time / state, tenant isolation, and Idempotency-Key on every
creating POST (messages, batches, contact lists)."""

from __future__ import annotations

import uuid

from litestar.testing import TestClient

from smsguard import batches

TEXT = "【示例商城】您的订单已发货，请注意查收。"


def _send(app: TestClient, headers: dict[str, str], **body):
    return app.post("/v1/messages", headers=headers, json=body)


def test_a_text_message_is_a_screened_one_recipient_batch(app: TestClient, tenant, ctx) -> None:
    r = _send(app, tenant.h, to="+86 138 1234 0001", text=TEXT, kind="notification")
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["state"] == "scheduled" and m["to"] == "138****0001" and m["decision"] == "pass"
    assert "13812340001" not in r.text
    got = app.get(f"/v1/messages/{m['id']}", headers=tenant.h).json()
    assert got["reasons"] == [] and got["text"] == TEXT and got["cost"] == m["cost"] and float(got["cost"]) > 0
    # the batch path: its own batch, released by the release worker, handed to the outbox
    assert batches.get_batch(ctx, tenant.id, m["batch_id"])["counts"] == {"queued": 1}
    batches.ReleaseWorker(ctx, poll=0.01).run(until_idle=True)
    got = app.get(f"/v1/messages/{m['id']}", headers=tenant.h).json()
    assert got["state"] == "submitted" and got["delivery"]["submitted_at"]


def test_blocked_and_review_content_and_template_variables(app: TestClient, tenant) -> None:
    r = _send(app, tenant.h, to="13812340002", text="【示例商城】赌场开业，欢迎光临")
    assert r.status_code == 201 and r.json()["state"] == "rejected"
    got = app.get(f"/v1/messages/{r.json()['id']}", headers=tenant.h).json()
    assert got["decision"] == "block" and any(x["code"] == "lexicon.gambling" and x["term"] == "赌场"
                                              for x in got["reasons"])
    tpl = app.post("/v1/templates", headers=tenant.h, json={
        "name": "ship", "kind": "notification", "signature": "示例商城", "body": "${name}您好，订单已发货。"})
    assert tpl.status_code == 201 and tpl.json()["status"] == "approved", tpl.text
    ok = _send(app, tenant.h, to="13812340003", template_id=tpl.json()["id"], variables={"name": "张三"})
    assert ok.status_code == 201 and ok.json()["state"] == "scheduled", ok.text
    # a link inside a variable value waits for a reviewer: 202
    held = _send(app, tenant.h, to="13812340003", template_id=tpl.json()["id"],
                 variables={"name": "点击 https://shop.example.com/a 领取"})
    assert held.status_code == 202 and held.json()["state"] == "review", held.text
    assert any(x["code"] == "variable.link" for x in app.get(f"/v1/messages/{held.json()['id']}",
                                                              headers=tenant.h).json()["reasons"])
    bad = _send(app, tenant.h, to="13812340003", template_id=tpl.json()["id"], variables={"nom": "x"})
    assert bad.status_code == 400 and bad.json()["where"] == "$.variables", bad.text
    missing = _send(app, tenant.h, to="13812340003", template_id=tpl.json()["id"])
    assert missing.status_code == 400 and missing.json()["code"] == "batch.variables", missing.text


def test_opt_outs_and_budget_apply(app: TestClient, tenant, ctx) -> None:
    assert app.post("/v1/optouts", headers=tenant.h, json={"phone": "13812340004"}).status_code == 200
    r = _send(app, tenant.h, to="13812340004", text=TEXT)
    assert r.status_code == 201
    batches.ReleaseWorker(ctx, poll=0.01).run(until_idle=True)
    assert app.get(f"/v1/messages/{r.json()['id']}", headers=tenant.h).json()["state"] == "opted_out"
    assert app.put("/v1/budget", headers=tenant.h, json={"limit": 0.0}).status_code == 200
    r = _send(app, tenant.h, to="13812340005", text=TEXT)
    assert r.status_code == 402 and r.json()["code"] == "budget.exceeded", r.text
    # nothing left that could still be sent: the draft was cancelled
    listed = app.get("/v1/messages", headers=tenant.h, params={"phone": "13812340005"}).json()["messages"]
    assert [m["state"] for m in listed] == ["cancelled"]


def test_bad_input_is_a_clear_400(app: TestClient, tenant) -> None:
    cases = [
        ({"to": "138八0013800", "text": TEXT}, "phone.invalid", "$.to"),
        ({"to": "13812340006"}, "message.source", "$"),
        ({"to": "13812340006", "text": TEXT, "variables": {"a": "b"}}, "message.variables", "$.variables"),
        ({"to": "13812340006", "text": "没有签名的短信"}, "batch.signature", "$.signature"),
        ({"to": "13812340006", "text": TEXT, "bogus": 1}, "input.schema", "$.bogus"),
        ({"to": "13812340006", "template_id": 2_000_000_000}, "template.not_found", "$.template_id"),
    ]
    for body, code, where in cases:
        r = _send(app, tenant.h, **body)
        assert 400 <= r.status_code < 500 and (r.json()["code"], r.json()["where"]) == (code, where), (body, r.text)
    r = app.get("/v1/messages", headers=tenant.h, params={"phone": "not a number"})
    assert r.status_code == 400 and r.json()["where"] == "query phone"
    assert app.get("/v1/messages", headers=tenant.h, params={"state": "nope"}).status_code == 400


def test_list_by_number_time_and_state_paginated(app: TestClient, tenant) -> None:
    ids = [_send(app, tenant.h, to="13812340007", text=TEXT).json()["id"] for _ in range(3)]
    other = _send(app, tenant.h, to="13812340008", text=TEXT).json()["id"]
    blocked = _send(app, tenant.h, to="13812340007", text="【示例商城】赌场").json()["id"]
    # any spelling of the number finds it (keyed hash); numbers come back masked
    page = app.get("/v1/messages", headers=tenant.h, params={"phone": "+86 1381234０007", "limit": 2}).json()
    assert [m["id"] for m in page["messages"]] == [blocked, ids[2]] and page["next_before"] == ids[2]
    assert {m["to"] for m in page["messages"]} == {"138****0007"}
    rest = app.get("/v1/messages", headers=tenant.h,
                   params={"phone": "13812340007", "before": page["next_before"]}).json()
    assert [m["id"] for m in rest["messages"]] == [ids[1], ids[0]] and rest["next_before"] is None
    states = app.get("/v1/messages", headers=tenant.h, params={"state": "rejected"}).json()["messages"]
    assert [m["id"] for m in states] == [blocked]
    created = app.get(f"/v1/messages/{other}", headers=tenant.h).json()["created_at"]
    after = app.get("/v1/messages", headers=tenant.h, params={"from": created}).json()["messages"]
    assert [m["id"] for m in after] == [blocked, other]
    before = app.get("/v1/messages", headers=tenant.h, params={"to": created}).json()["messages"]
    assert [m["id"] for m in before] == ids[::-1]


def test_another_tenants_message_is_404(app: TestClient, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    m = _send(app, a.h, to="13812340009", text=TEXT).json()
    r = app.get(f"/v1/messages/{m['id']}", headers=b.h)
    assert r.status_code == 404 and r.json()["code"] == "message.not_found"
    assert app.get("/v1/messages", headers=b.h, params={"phone": "13812340009"}).json()["messages"] == []
    assert app.get(f"/v1/messages/{m['id']}", headers=a.keys["auditor"]).status_code == 200  # auditors read
    r = _send(app, a.keys["auditor"], to="13812340009", text=TEXT)
    assert r.status_code == 403 and r.json()["code"] == "auth.forbidden"


def test_every_state_change_is_audited(app: TestClient, tenant, ctx) -> None:
    from sqlalchemy import select

    from smsguard.audit._tables import events as audit_events

    m = _send(app, tenant.h, to="13812340010", text=TEXT).json()
    with ctx.db.connect() as conn:
        rows = conn.execute(select(audit_events.c.event_type, audit_events.c.subject)
                            .where(audit_events.c.tenant_id == tenant.id).order_by(audit_events.c.id)).all()
    kinds = [e for e, s in rows if s in (f"message:{m['id']}", f"batch:{m['batch_id']}")]
    assert kinds == ["batch.draft", "message.created", "batch.screening", "batch.screened", "batch.approved",
                     "batch.scheduled"]


# -- Idempotency-Key ----------------------------------------------------------------------------------------


def test_same_key_same_body_is_the_first_answer(app: TestClient, tenant, backend, message_engine) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    body = {"to": "13812340011", "text": TEXT}
    first = app.post("/v1/messages", headers={**tenant.h, **key}, json=body)
    again = app.post("/v1/messages", headers={**tenant.h, **key}, json=body)
    assert first.status_code == again.status_code == 201 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    listed = app.get("/v1/messages", headers=tenant.h, params={"phone": "13812340011"}).json()["messages"]
    assert len(listed) == 1  # sent once
    other = app.post("/v1/messages", headers={**tenant.h, **key}, json={**body, "text": TEXT + "2"})
    assert other.status_code == 409 and other.json() == {
        "code": "idempotency.mismatch", "where": "header Idempotency-Key", "message": other.json()["message"]}
    # another route with the same key is another request too
    assert app.post("/v1/verify", headers={**tenant.h, **key}, json={"to": "13812340011", "signature": "示例商城"}
                    ).json()["code"] == "idempotency.mismatch"
    # the key is in SQL: a new process (another app on the same database) answers the same
    from smsguard.api import create_app

    with TestClient(create_app(message_engine, settings=backend.settings(rate_limit=1_000_000))) as fresh:
        replay = fresh.post("/v1/messages", headers={**tenant.h, **key}, json=body)
    assert replay.status_code == 201 and replay.content == first.content


def test_keys_are_per_tenant_and_errors_are_not_kept(app: TestClient, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    key = {"Idempotency-Key": "same-key"}
    ra = app.post("/v1/messages", headers={**a.h, **key}, json={"to": "13812340012", "text": TEXT})
    rb = app.post("/v1/messages", headers={**b.h, **key}, json={"to": "13812340012", "text": TEXT})
    assert ra.status_code == rb.status_code == 201 and ra.json()["id"] != rb.json()["id"]
    bad = {"to": "13812340012", "text": "no signature"}
    assert app.post("/v1/messages", headers={**a.h, "Idempotency-Key": "k2"}, json=bad).status_code == 400
    fixed = app.post("/v1/messages", headers={**a.h, "Idempotency-Key": "k2"}, json=bad | {"signature": "示例商城"})
    assert fixed.status_code == 201  # the failed first try left the key free
    r = app.post("/v1/messages", headers={**a.h, "Idempotency-Key": "has space"}, json=bad)
    assert r.status_code == 400 and r.json()["where"] == "header Idempotency-Key"


def test_batches_and_contact_lists_take_idempotency_keys(app: TestClient, tenant) -> None:
    key = {"Idempotency-Key": f"b-{uuid.uuid4()}"}
    body = {"content": TEXT, "numbers": ["13812340013", "13812340014"]}
    first = app.post("/v1/batches", headers={**tenant.h, **key}, json=body)
    again = app.post("/v1/batches", headers={**tenant.h, **key}, json=body)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert app.post("/v1/batches", headers={**tenant.h, **key}, json={**body, "numbers": ["13812340015"]}
                    ).status_code == 409
    csv = {**tenant.h, "content-type": "text/csv", "Idempotency-Key": f"l-{uuid.uuid4()}"}
    one = app.post("/v1/contact-lists?name=vip", headers=csv, content=b"phone\n13812340016\n")
    two = app.post("/v1/contact-lists?name=vip", headers=csv, content=b"phone\n13812340016\n")
    assert one.status_code == two.status_code == 201 and one.json()["id"] == two.json()["id"]
    three = app.post("/v1/contact-lists?name=vip", headers=csv, content=b"phone\n13812340017\n")
    assert three.status_code == 409 and three.json()["code"] == "idempotency.mismatch"
    renamed = app.post("/v1/contact-lists?name=other", headers=csv, content=b"phone\n13812340016\n")
    assert renamed.status_code == 409


def test_a_key_whose_request_still_runs_is_409_with_retry_after_and_a_dead_owners_is_taken_over(
        app: TestClient, tenant, backend) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert, select

    from smsguard.api import _idempotency as idem

    body = {"to": "13812340031", "text": TEXT}
    request = app.post("/v1/messages", headers=tenant.h, json=body).request  # the fingerprint of this body
    fingerprint = idem.hashlib.sha256(b"POST /v1/messages\n" + request.content).hexdigest()
    at = datetime.now(UTC)
    alive = idem._me()  # this process: alive
    dead = f"{idem.socket.gethostname()}:999999999:1:dead"  # a pid no process has
    with backend.db.begin() as conn:
        for key, owner in (("still-running", alive), ("owner-died", dead)):
            conn.execute(insert(idem.idempotency_keys).values(
                tenant_id=tenant.id, key=key, fingerprint=fingerprint, created_at=at, locked_until=at + idem.LOCK,
                expires_at=at + idem.TTL, owner=owner))
    busy = app.post("/v1/messages", headers={**tenant.h, "Idempotency-Key": "still-running"}, json=body)
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency.in_progress", busy.text
    assert 1 <= int(busy.headers["Retry-After"]) <= 60 and busy.json()["where"] == "header Idempotency-Key"
    # the owner is gone (a crash): the retry runs at once, not after the 60 s lock, and its answer is kept
    taken = app.post("/v1/messages", headers={**tenant.h, "Idempotency-Key": "owner-died"}, json=body)
    assert taken.status_code == 201 and "Idempotent-Replayed" not in taken.headers, taken.text
    with backend.db.connect() as conn:
        row = conn.execute(select(idem.idempotency_keys).where(idem.idempotency_keys.c.tenant_id == tenant.id,
                                                               idem.idempotency_keys.c.key == "owner-died")).one()
    assert row.resource == f"message:{taken.json()['id']}" and row.status_code == 201
    again = app.post("/v1/messages", headers={**tenant.h, "Idempotency-Key": "owner-died"}, json=body)
    assert again.content == taken.content and again.headers["Idempotent-Replayed"] == "true"
    assert datetime.now(UTC) - at < timedelta(seconds=30)
