"""Issue 19's console defects over plain HTTP against the real ``smsguard serve`` (both backends): default names
in the tenant's zone, compose errors once by their field with no PASS or cost beside them, cancellation and
deletion that ask first, the reviewer's decision on the batch page, rejected lines shown in full to their own
tenant, failed uploads deletable, drafts kept server-side across a re-login, a passing verdict's informational
classifier score not drawn as a violation, and a favicon for both UIs."""

from __future__ import annotations

import re
from datetime import timedelta

from console_support import Client, now_local
from sqlalchemy import text

from smsguard.review import Decision
from smsguard.review._items import decision_handler

SIG = "示例商城"


def _compose(c: Client, **form) -> object:
    base = {"mode": "adhoc", "kind": "notification", "signature": SIG, "content": "您的订单已发货。",
            "numbers": "13812345678", "action": "submit"}
    return c.post_form("/console/compose", {**base, **form})


def _batch_id(r) -> int:
    assert r.status_code == 302, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def test_default_batch_name_is_in_the_tenant_zone(alice) -> None:
    before = now_local()
    bid = _batch_id(_compose(alice, schedule_at=f"{now_local(timedelta(hours=3)):%Y-%m-%dT%H:%M:%S}"))
    after = now_local()
    name = alice.get(f"/console/batches/{bid}/progress").json()["name"]
    assert name in {f"批次 {before:%Y-%m-%d %H:%M}", f"批次 {after:%Y-%m-%d %H:%M}"}  # Asia/Shanghai, not UTC
    day = f"{now_local():%Y-%m-%d}"
    assert f'placeholder="批次 {day}' in alice.get("/console/compose").text


def test_compose_errors_once_by_their_field_without_pass_or_cost(alice) -> None:
    past = now_local(-timedelta(hours=2))
    r = _compose(alice, kind="marketing", content="新品上市，全场8折，回T退订", schedule_at=f"{past:%Y-%m-%dT%H:%M}")
    assert r.status_code == 400
    html = r.text
    assert html.count("该时间已过") == 1  # "this time has passed", in the default language
    assert re.search(r'id="schedule_at-error"[^>]*>发送时间: 该时间已过', html)
    assert "schedule_at:" not in html and 'id="est-cost"' not in html and 'data-decision="pass"' not in html
    # template mode without a list: the list's error by the list, named as the customer reads it
    r = alice.post_form("/console/compose", {"mode": "template", "template_id": "", "list_id": "", "action": "check"})
    assert "list_id:" not in r.text and "template_id:" not in r.text


def test_cancel_asks_first(alice) -> None:
    bid = _batch_id(_compose(alice, schedule_at=f"{now_local(timedelta(hours=3)):%Y-%m-%dT%H:%M:%S}"))
    page = alice.get(f"/console/batches/{bid}").text
    assert 'data-confirm="cancel-dialog"' in page and '<dialog id="cancel-dialog"' in page
    r = alice.post_form(f"/console/batches/{bid}/cancel", {})  # no JavaScript: the server asks
    assert r.status_code == 200 and 'name="confirm" value="yes"' in r.text and "无法撤销" in r.text
    assert alice.get(f"/console/batches/{bid}/progress").json()["state"] == "scheduled"
    r = alice.post_form(f"/console/batches/{bid}/cancel", {"confirm": "yes"})
    assert r.status_code == 302
    p = alice.get(f"/console/batches/{bid}/progress").json()
    assert p["state"] == "cancelled" and p["counts"] == {"cancelled": 1}


def test_quiet_hours_batch_says_deferred_and_can_be_cancelled(console_server, alice) -> None:
    at = console_server.quiet_start + timedelta(minutes=20)
    r = _compose(alice, kind="marketing", content="新品上市，全场8折，回T退订", schedule_at=f"{at:%Y-%m-%dT%H:%M:%S}")
    bid = _batch_id(r)
    end = console_server.quiet_start + timedelta(hours=1)
    label = f"延后至 {end:%H:%M}（免打扰时段）" if end.date() == now_local().date() else \
        f"延后至 {end:%m-%d %H:%M}（免打扰时段）"  # "deferred until … (quiet hours)"
    page = alice.get(f"/console/batches/{bid}").text
    assert f"已创建：{label}" in page  # the flash
    assert re.search(rf'id="state"[^>]*>{re.escape(label)}<', page)
    assert label in alice.get("/console/batches").text
    assert alice.post_form(f"/console/batches/{bid}/cancel", {"confirm": "yes"}).status_code == 302
    assert alice.get(f"/console/batches/{bid}/progress").json()["state"] == "cancelled"


def test_reviewer_rejection_reaches_the_batch_page(console_server, alice) -> None:
    bid = _batch_id(_compose(alice, content="低息贷款，详询门店。"))
    p = alice.get(f"/console/batches/{bid}/progress").json()
    assert p["state"] == "review"
    with console_server.db.begin() as conn:
        h = conn.execute(text("SELECT content_hash FROM batch_contents WHERE batch_id = :b"), {"b": bid}).scalar_one()
        tenant = conn.execute(text("SELECT tenant_id FROM batches WHERE id = :b"), {"b": bid}).scalar_one()
        decision_handler("batch_content")(conn, Decision(
            item_id=0, source="batch_content", source_ref=f"{bid}:{h}", tenant_id=tenant, approved=False,
            reason="贷款类营销需报备资质", deciders=["rita"], category="loan"))
    page = alice.get(f"/console/batches/{bid}").text
    assert re.search(r'class="error review-decision" data-decision="rejected"', page)
    assert "贷款类营销需报备资质" in page and "loan" in page
    assert "nothing to send" not in page


def test_rejected_lines_in_full_and_a_failed_upload_deleted(console_server, alice) -> None:
    files = {"file": ("m.csv", "手机号,姓名\n1381234,李娜\n13812340001,张伟\n021-61234567,赵磊\n".encode())}
    r = alice.http.post("/console/lists", data={"_csrf_token": alice.token, "name": "m"}, files=files)
    lid = _batch_id(r)
    page = alice.get(f"/console/lists/{lid}").text
    assert "1381234<" in page and "021-61234567" in page  # the customer's own upload, as uploaded
    report = alice.get(f"/console/lists/{lid}/rejects.csv").text
    assert "1381234" in report and "021-61234567" in report
    assert "not a phone number (" not in page and "string supplied" not in page
    # an upload that fails outright leaves a failed list: it can be deleted (after a confirmation)
    files = {"file": ("bad.csv", b"name,city\nzhang,shanghai\n")}
    r = alice.http.post("/console/lists", data={"_csrf_token": alice.token, "name": "bad"}, files=files)
    assert r.status_code == 400
    failed = int(re.findall(r'href="/console/lists/(\d+)"', alice.get("/console/lists").text)[0])
    assert "failed" in alice.get(f"/console/lists/{failed}").text
    r = alice.post_form(f"/console/lists/{failed}/delete", {})
    assert r.status_code == 200 and 'name="confirm" value="yes"' in r.text
    r = alice.post_form(f"/console/lists/{failed}/delete", {"confirm": "yes"})
    assert r.status_code == 302 and alice.get(f"/console/lists/{failed}").status_code == 404


def test_draft_is_kept_server_side_across_a_re_login(console_server, alice) -> None:
    content = "草稿：周末到店有礼，回T退订"
    r = alice.post_json("/console/api/draft", {"mode": "adhoc", "kind": "marketing", "signature": SIG,
                                               "content": content, "numbers": "13812345678"})
    assert r.status_code == 200 and r.json()["saved_local"]
    with console_server.db.connect() as conn:
        blob = conn.execute(text("SELECT form_enc FROM console_drafts")).scalars().all()
    assert blob and not any(b"13812345678" in bytes(x) for x in blob)  # encrypted: it holds numbers
    again = Client(console_server, "alice")  # a new log-in: a fresh session
    try:
        page = again.get("/console/compose").text
        assert content in page and "13812345678" in page and "draft restored" in page
        bob = Client(console_server, "bob")
        assert content not in bob.get("/console/compose").text  # per user
        bob.close()
        assert again.post_form("/console/compose/discard", {}).status_code == 302
        assert content not in again.get("/console/compose").text
    finally:
        again.close()


def test_passing_verdict_shows_the_classifier_score_as_a_note(alice) -> None:
    r = alice.post_form("/console/compose", {"mode": "adhoc", "kind": "marketing", "signature": SIG,
                                             "content": "新品上市，全场8折，回T退订", "numbers": "13812345678",
                                             "action": "check"})
    assert r.status_code == 200 and 'data-decision="pass"' in r.text
    assert re.search(r'<li class="reason note" data-code="classifier.score" data-action="pass">', r.text)
    assert 'data-codes="classifier.score"' not in r.text  # never drawn on the text as a hit
    est = alice.post_json("/console/api/estimate", {"mode": "adhoc", "kind": "marketing", "signature": SIG,
                                                   "content": "新品上市，全场8折，回T退订", "numbers": "13812345678"})
    assert est.json()["decision"] == "pass" and "<mark" not in est.json()["html"]


def test_favicon_for_both_uis(console_server, alice) -> None:
    import httpx

    assert 'rel="icon" href="/console/static/favicon.svg"' in alice.get("/console/batches").text
    for path in ("/console/static/favicon.svg", "/review/static/favicon.svg"):
        r = httpx.get(console_server.url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml"), path
    assert 'rel="icon" href="/review/static/favicon.svg"' in httpx.get(console_server.url + "/review/login").text
