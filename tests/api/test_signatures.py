"""Signature filing through the running app on both backends: apply with documents, bad uploads answer a
clear 4xx, tenants are isolated, documents come back as attachments, and only an approved signature sends."""

from __future__ import annotations

from sqlalchemy import select

from smsguard import filing

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64  # a Windows executable, named .pdf below


def apply(client, tenant, name: str, files=None, **fields):
    data = {"name": name, "type": "company", "use": "self", **fields}
    files = files if files is not None else [("documents", ("营业执照.pdf", PDF, "application/pdf"))]
    return client.post("/v1/signatures", headers=tenant.headers, data=data, files=files)


def content_batch(client, tenant, signature: str):
    return client.post("/v1/batches", headers=tenant.headers, json={
        "content": f"【{signature}】您的订单已发货，请注意查收。", "numbers": ["13812345678"], "kind": "notification"})


def test_apply_list_get_and_isolation(client, make_tenant, backend) -> None:
    t, other = make_tenant(), make_tenant()
    r = apply(client, t, "甲乙商城", files=[("documents", ("a.pdf", PDF, "application/pdf")),
                                        ("documents", ("../../etc/x.png", PNG, "text/html"))])
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["name"], s["type"], s["use"], s["status"]) == ("甲乙商城", "company", "self", "pending")
    assert [d["content_type"] for d in s["documents"]] == ["application/pdf", "image/png"]
    assert s["documents"][1]["filename"] == "x.png"  # path parts dropped, type from the bytes
    assert [x["id"] for x in client.get("/v1/signatures", headers=t.headers).json()] == [s["id"]]
    assert client.get("/v1/signatures", headers=other.headers).json() == []
    r = client.get(f"/v1/signatures/{s['id']}", headers=other.headers)
    assert r.status_code == 404 and r.json()["code"] == "signature.not_found"
    doc = s["documents"][0]["id"]
    r = client.get(f"/v1/signatures/{s['id']}/documents/{doc}", headers=t.headers)
    assert r.status_code == 200 and r.content == PDF
    assert r.headers["content-type"].startswith("application/pdf")
    assert r.headers["content-disposition"] == "attachment; filename=\"a.pdf\"; filename*=UTF-8''a.pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/v1/signatures/{s['id']}/documents/{doc}", headers=other.headers).status_code == 404
    # encrypted at rest: the stored bytes are not the document
    from smsguard.filing._tables import documents

    with backend.db.connect() as conn:
        stored = conn.execute(select(documents.c.data_enc).where(documents.c.id == doc)).scalar_one()
    assert PDF not in bytes(stored) and b"%PDF" not in bytes(stored)
    assert apply(client, t, "甲乙商城").json()["code"] == "signature.exists"


def test_bad_uploads_are_clear_4xx(client, make_tenant) -> None:
    t = make_tenant()
    r = apply(client, t, "假文件", files=[("documents", ("licence.pdf", EXE, "application/pdf"))])
    assert r.status_code == 400 and r.json()["code"] == "document.type", r.text
    assert r.json()["where"] == "$.documents[0]"
    r = apply(client, t, "文本文件", files=[("documents", ("a.txt", b"hello", "text/plain"))])
    assert r.status_code == 400 and r.json()["code"] == "document.type"
    big = PDF + b"0" * filing.MAX_DOCUMENT_BYTES
    r = apply(client, t, "大文件", files=[("documents", ("big.pdf", big, "application/pdf"))])
    assert r.status_code == 400 and r.json()["code"] == "document.too_large"
    r = apply(client, t, "无文件", files=[("other", ("a.pdf", PDF, "application/pdf"))])
    assert r.status_code == 400 and r.json()["code"] == "document.missing"
    r = apply(client, t, "坏【名】")
    assert r.status_code == 400 and r.json()["code"] == "signature.name"
    r = apply(client, t, "好名字", type="spaceship")
    assert r.status_code == 400 and r.json()["code"] == "signature.type"
    r = client.post("/v1/signatures", headers=t.headers, json={"name": "x"})
    assert r.status_code == 400 and r.json()["code"] == "signature.form"
    assert client.get("/v1/signatures", headers=t.headers).json() == []  # nothing half-stored


def test_only_approved_signatures_send(client, make_tenant, backend) -> None:
    t = make_tenant()
    sid = apply(client, t, "丙丁书店").json()["id"]
    r = content_batch(client, t, "丙丁书店")
    assert r.status_code == 403 and r.json()["code"] == "signature.not_approved", r.text
    r = client.post("/v1/batches", headers=t.headers, json={
        "content": "【丙丁书店】草稿", "numbers": ["13812345678"], "kind": "notification", "draft": True})
    assert r.status_code == 403  # not even a draft under an unapproved signature
    rejected = filing.decide(backend.db, sid, approve=False, reason="营业执照模糊，请重新上传",
                             reviewer="reviewer:wang")
    assert rejected["status"] == "rejected"
    s = client.get(f"/v1/signatures/{sid}", headers=t.headers).json()
    assert (s["status"], s["reason"]) == ("rejected", "营业执照模糊，请重新上传")
    r = client.post(f"/v1/signatures/{sid}/resubmit", headers=t.headers,
                    files=[("documents", ("new.png", PNG, "image/png"))])
    assert r.status_code == 200 and r.json()["status"] == "pending" and len(r.json()["documents"]) == 2
    filing.decide(backend.db, sid, approve=True, reason="", reviewer="reviewer:wang")
    filing.set_channel(backend.db, sid, "cmcc-main", "filed", reviewer="reviewer:wang")
    s = client.get(f"/v1/signatures/{sid}", headers=t.headers).json()
    assert s["status"] == "approved" and s["channels"] == [{"channel": "cmcc-main", "status": "filed", "note": None}]
    r = content_batch(client, t, "丙丁书店")
    assert r.status_code == 201, r.text
    r = content_batch(client, t, "未报备")  # a name never filed, by a tenant that files
    assert r.status_code == 403 and r.json()["code"] == "signature.not_approved"
    from smsguard.audit._tables import events as audit_events

    with backend.db.connect() as conn:
        rows = conn.execute(select(audit_events.c.event_type, audit_events.c.payload)
                            .where(audit_events.c.subject == f"signature:{sid}").order_by(audit_events.c.id)).all()
    assert [r.event_type for r in rows] == ["signature.status"] * 4 + ["signature.channel"]


def test_tenant_without_filings_keeps_policy_signatures(client, make_tenant) -> None:
    """Migration path: until a tenant files its first signature, the policy.yaml list still governs."""
    r = content_batch(client, make_tenant(), "旧签名")
    assert r.status_code == 201, r.text


def test_template_versions_edit_reject_resubmit_approve(client, make_tenant, backend) -> None:
    """An approved template keeps sending its approved text while an edit waits; a rejected edit shows the
    reviewer's reason in the history and can be resubmitted; approving makes the new text the one that sends."""
    from smsguard import batches

    t, other = make_tenant(), make_tenant()
    r = client.post("/v1/templates", headers=t.headers, json={
        "name": "ship", "kind": "notification", "signature": "示例商城", "body": "${姓名}您好，您的订单已发货。"})
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    tid = r.json()["id"]
    url = f"/v1/templates/{tid}/versions"
    r = client.post(url, headers=t.headers, json={"body": "${姓名}您好，订单已发货，点 http://x.cn 查看"})
    assert r.status_code == 201 and (r.json()["version"], r.json()["status"]) == (2, "pending"), r.text
    again = client.post(url, headers=t.headers, json={"body": "再改"})
    assert again.status_code == 409 and again.json()["code"] == "template.version_pending"
    bad = client.post(url, headers=t.headers, json={"body": "再改", "signature": "示例,商城"})  # punctuation
    assert bad.status_code == 400 and bad.json()["where"] == "$.signature", bad.text
    assert client.post(url, headers=other.headers, json={"body": "x"}).status_code == 404
    assert client.get(url, headers=other.headers).status_code == 404
    ctx = batches.Context(db=backend.db, redis=None, vault=None)  # the reviewer's side needs SQL only
    [pending] = [v for v in batches.pending_versions(ctx) if v["template_id"] == tid]
    batches.decide_version(ctx, pending["id"], approve=False, reason="含未报备链接", reviewer="user:rita")
    assert client.get(f"/v1/templates/{tid}", headers=t.headers).json()["body"] == "${姓名}您好，您的订单已发货。"
    history = client.get(url, headers=t.headers).json()
    assert [(v["version"], v["status"], v["reason"]) for v in history] == [
        (2, "rejected", "含未报备链接"), (1, "approved", None)]
    r = client.post(url, headers=t.headers, json={"body": "${姓名}您好，订单已发货，请在App内查看。"})
    assert r.status_code == 201 and r.json()["version"] == 3
    batches.decide_version(ctx, r.json()["id"], approve=True, reason="", reviewer="user:rita")
    now = client.get(f"/v1/templates/{tid}", headers=t.headers).json()
    assert now["body"] == "${姓名}您好，订单已发货，请在App内查看。" and now["status"] == "approved"
    assert [v["status"] for v in client.get(url, headers=t.headers).json()] == ["approved", "rejected", "approved"]


def test_template_versions_are_items_of_the_main_review_queue(client, make_tenant, backend) -> None:
    """Issue 20: a proposed version waits in the main queue too (source ``template_version``, its SLA timer);
    deciding it on /review/templates closes that item, and deciding the item in the queue decides the version."""
    import uuid

    from smsguard import batches
    from smsguard.review import ReviewConfig
    from smsguard.review._queue import Queue
    from smsguard.review._service import Filters, ReviewService
    from smsguard.review._tables import review_items
    from smsguard.review._users import create_user

    t = make_tenant()
    r = client.post("/v1/templates", headers=t.headers, json={
        "name": "ship", "kind": "notification", "signature": "示例商城", "body": "您的订单已发货。"})
    tid = r.json()["id"]
    url = f"/v1/templates/{tid}/versions"
    v2 = client.post(url, headers=t.headers, json={"body": "订单已发货，请在App内查看物流。"}).json()

    def item(vid: int):
        with backend.db.connect() as conn:
            return conn.execute(select(review_items).where(review_items.c.source == "template_version",
                                                           review_items.c.source_ref == str(vid))).one()

    first = item(v2["id"])
    assert first.status == "pending" and first.text == "【示例商城】订单已发货，请在App内查看物流。"
    ctx = batches.Context(db=backend.db, redis=None, vault=None)
    batches.decide_version(ctx, v2["id"], approve=False, reason="请写明查看方式", reviewer="user:rita")
    assert item(v2["id"]).status == "rejected"
    # the next version is decided in the main queue instead
    v3 = client.post(url, headers=t.headers, json={"body": "订单已发货，请在App“我的订单”查看。"}).json()
    import redis as redis_lib

    rc = redis_lib.Redis.from_url(backend.redis_url)
    try:
        config = ReviewConfig()
        service = ReviewService(backend.db, Queue(backend.db, rc, namespace=f"{backend.namespace}:tv{tid}",
                                                  config=config), config)
        # this queue's stream and group first: items other tests made (schemathesis creates template versions)
        # carry stream ids of the app's own queue, which this one is asked about too
        service.queue.epoch()
        rows = service.queue_view(Filters.from_query({"source": "template_version"})).rows
        assert item(v3["id"]).id in {x["id"] for x in rows} and all(x["source"] == "template_version" for x in rows)
        assert {x["sla_state"] for x in rows if x["id"] == item(v3["id"]).id} == {"ok"}
        user = create_user(backend.db, f"tv-{uuid.uuid4().hex[:6]}", "correct horse battery", "reviewer")
        it = item(v3["id"])
        service.claim(user, it.id)
        service.decide(user, it.id, version=it.version, action="approve")
    finally:
        rc.close()
    now = client.get(f"/v1/templates/{tid}", headers=t.headers).json()
    assert now["body"] == "订单已发货，请在App“我的订单”查看。" and now["status"] == "approved"
    assert [v["status"] for v in client.get(url, headers=t.headers).json()][:2] == ["approved", "rejected"]
