"""Console security and contracts over plain HTTP (no browser): tenant isolation, CSRF, roles, sessions kept
apart from the reviewer UI, and the compose preview agreeing with the engine and with ``create_template``."""

from __future__ import annotations

import re

import pytest
from console_support import Client

from smsguard.console._highlight import highlight

MARKETING = "双11大促，全场5折起，回T退订"


@pytest.fixture(scope="module")
def alice_objects(alice):
    """A template, a contact list and a batch of shop-a (alice's tenant)."""
    r = alice.post_form("/console/templates", {"name": "t", "kind": "notification", "signature": "示例商城",
                                               "body": "${姓名}您好，您的订单已发货。"})
    assert r.status_code == 302
    template_id = int(r.headers["location"].rsplit("/", 1)[1])
    files = {"file": ("a.csv", "手机号,姓名\n13812345678,张伟\n".encode())}
    r = alice.http.post("/console/lists", data={"_csrf_token": alice.token, "name": "a"}, files=files)
    assert r.status_code == 302, r.text
    list_id = int(r.headers["location"].rsplit("/", 1)[1])
    r = alice.post_form("/console/compose", {"mode": "template", "template_id": str(template_id),
                                             "list_id": str(list_id), "action": "submit"})
    assert r.status_code == 302, r.text
    batch_id = int(r.headers["location"].rsplit("/", 1)[1])
    return {"template": template_id, "list": list_id, "batch": batch_id}


def test_another_tenant_sees_nothing(alice, bob, alice_objects):
    t, lst, b = alice_objects["template"], alice_objects["list"], alice_objects["batch"]
    assert alice.get(f"/console/batches/{b}").status_code == 200
    for path in (f"/console/templates/{t}", f"/console/lists/{lst}", f"/console/lists/{lst}/rejects.csv",
                 f"/console/batches/{b}", f"/console/batches/{b}/progress", f"/console/batches/{b}/events",
                 f"/console/batches/{b}/report.csv"):
        assert bob.get(path).status_code == 404, path
    # lists show only the own tenant's rows
    for page, needle in (("/console/batches", f'href="/console/batches/{b}"'),
                         ("/console/lists", f'href="/console/lists/{lst}"'),
                         ("/console/templates", f'href="/console/templates/{t}"')):
        assert needle in alice.get(page).text
        assert needle not in bob.get(page).text
    # nor can bob use alice's template or list in a preview, or cancel her batch
    r = bob.post_json("/console/api/estimate", {"mode": "template", "template_id": t, "list_id": lst})
    assert r.status_code == 404
    assert bob.post_form(f"/console/batches/{b}/cancel", {}).status_code == 404
    assert alice.get(f"/console/batches/{b}/progress").json()["state"] != "cancelled"


def test_csrf_is_required_for_every_change(console_server, alice):
    anonymous = Client(console_server)
    # log-in itself needs the token (no login CSRF)
    r = anonymous.post_form("/console/login", {"username": "alice", "password": "correct horse battery"},
                            token=False)
    assert r.status_code == 403
    anonymous.close()
    assert alice.post_form("/console/compose", {"mode": "adhoc", "content": MARKETING}, token=False).status_code == 403
    assert alice.post_json("/console/api/estimate", {"mode": "adhoc"}, token=False).status_code == 403
    files = {"file": ("a.csv", b"13812345678\n")}
    assert alice.http.post("/console/lists", data={"name": "x"}, files=files).status_code == 403
    # a token from another session does not fit this session's cookie
    other = Client(console_server)
    r = alice.http.post("/console/api/estimate", json={"mode": "adhoc"}, headers={"X-CSRFToken": other.token})
    assert r.status_code == 403
    other.close()


def test_login_required_and_roles(console_server):
    anonymous = Client(console_server)
    r = anonymous.get("/console/batches")
    assert r.status_code == 302 and r.headers["location"].startswith("/console/login?next=")
    assert anonymous.post_json("/console/api/estimate", {"mode": "adhoc"}).status_code == 401
    bad = anonymous.post_form("/console/login", {"username": "alice", "password": "wrong password!"})
    assert bad.status_code == 401
    # open redirects are refused
    r = anonymous.post_form("/console/login", {"username": "alice", "password": "correct horse battery",
                                               "next": "//evil.example/x"})
    assert r.headers["location"] == "/console"
    anonymous.close()
    viewer = Client(console_server, "victor")
    assert viewer.get("/console/batches").status_code == 200
    r = viewer.post_form("/console/compose", {"mode": "adhoc", "kind": "notification", "signature": "示例商城",
                                              "content": "您的订单已发货", "numbers": "13812345678",
                                              "action": "submit"})
    assert r.status_code == 403
    assert viewer.post_form("/console/templates", {"name": "x", "kind": "notification", "signature": "示例商城",
                                                   "body": "您好"}).status_code == 403
    viewer.close()


def test_console_and_reviewer_accounts_and_sessions_are_apart(console_server, alice):
    # a reviewer cannot log in to the console, a console user not to the reviewer UI
    anonymous = Client(console_server)
    assert anonymous.post_form("/console/login", {"username": "rita", "password": "correct horse battery"}
                               ).status_code == 401
    page = anonymous.http.get("/review/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    r = anonymous.http.post("/review/login", data={"_csrf_token": token, "username": "alice",
                                                   "password": "correct horse battery"})
    assert r.status_code == 401
    # the console's session id, presented as the reviewer UI's cookie, is no reviewer session (and vice versa)
    sid = alice.http.cookies.get("sg_console")
    assert sid
    anonymous.http.cookies.set("sg_review", sid, path="/review")
    r = anonymous.http.get("/review")
    assert r.status_code in (302, 303) and "/review/login" in r.headers["location"]
    anonymous.close()


def test_pages_send_security_headers(alice):
    r = alice.get("/console/compose")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("content", "length", "segments", "encoding"), [
    ("您" * 64, 70, 1, "UCS-2"),  # 【示例商城】 (6) + 64 = 70: one UCS-2 message
    ("您" * 65, 71, 2, "UCS-2"),  # 71: two segments of 67
    ("您" * 128, 134, 2, "UCS-2"),
    ("您" * 129, 135, 3, "UCS-2"),
])
def test_counter_matches_the_engine(alice, content, length, segments, encoding):
    r = alice.post_json("/console/api/estimate", {"mode": "adhoc", "kind": "notification", "signature": "示例商城",
                                                   "content": content, "numbers": "13812345678\n13812345679"})
    body = r.json()
    assert (body["length"], body["segments"], body["encoding"]) == (length, segments, encoding)
    assert body["recipients"] == 2


def test_gsm7_counter_matches_the_engine(alice):
    r = alice.post_json("/console/api/estimate", {"mode": "adhoc", "kind": "notification", "signature": "",
                                                   "content": "Shop: " + "a" * 161, "numbers": "13812345678"})
    body = r.json()
    assert body["encoding"] == "GSM-7" and body["segments"] == 2  # 167 > 160: segments of 153


def test_template_preview_agrees_with_saving(alice):
    for body, expected in (("${姓名}您好，会员日全场8折，回T退订", "approved"),
                           ("${姓名}您好，秒杀专场 http://t.cn/abc 抢购", "blocked")):
        form = {"kind": "marketing", "signature": "示例商城", "body": body}
        preview = alice.post_json("/console/api/template-preview", form).json()
        r = alice.post_form("/console/templates", {"name": "p", **form})
        page = alice.get(r.headers["location"]).text
        status = re.search(r'id="template-status" data-status="(\w+)"', page).group(1)
        assert status == expected
        assert {"pass": "approved", "review": "review", "block": "blocked"}[preview["decision"]] == status


def test_optout_search_masks_numbers(console_server, alice):
    import httpx

    from smsguard.storage import create_key

    key, _ = create_key(console_server.db, "shop-a")  # opted out through the API, as an MO or CRM sync would
    r = httpx.post(f"{console_server.url}/v1/optouts", json={"phone": "13812348888"},
                   headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    page = alice.get("/console/optouts", params={"q": "8888"}).text
    assert "138****8888" in page and "13812348888" not in page
    exact = alice.get("/console/optouts", params={"q": "13812348888"}).text.split('id="search"', 1)[1]  # past the echo
    assert 'id="exact"' in exact and "已退订" in exact and "13812348888" not in exact


def test_highlight_escapes_and_splits_overlaps():
    text = "<b>百家乐</b>赌场"
    reasons = [{"code": "a", "severity": "high", "action": "block", "start": 3, "end": 6, "message": "x"},
               {"code": "b", "severity": "low", "action": "review", "start": 4, "end": 12, "message": "<y>"},
               {"code": "c", "severity": "medium", "action": "block", "start": None, "end": None, "message": "m"}]
    html = str(highlight(text, reasons))
    assert "<b>" not in html and "&lt;b&gt;" in html and "&lt;y&gt;" in html
    assert 'data-codes="a b"' in html  # 家乐 is covered by both
    assert html.count("<mark") == 4  # 百 | 家乐 | </b>赌场 | the span-less reason
    assert html.endswith("⟵ c</mark>")


def test_progress_streams_as_server_sent_events(alice, alice_objects):
    import time

    b = alice_objects["batch"]
    deadline = time.monotonic() + 30
    while not alice.get(f"/console/batches/{b}/progress").json()["final"]:  # the loopback pipeline sends it
        assert time.monotonic() < deadline, "batch did not complete"
        time.sleep(0.2)
    with alice.http.stream("GET", f"/console/batches/{b}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    assert "event: progress" in body and "event: end" in body
    progress = alice.get(f"/console/batches/{b}/progress").json()
    assert progress["state"] == "done" and progress["delivered"] == 1 and progress["timeline"]["points"]
