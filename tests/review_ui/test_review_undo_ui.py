"""Undo in the reviewer UI against a real ``smsguard serve`` (policy.yaml ``review.undo_seconds``: 10): the page
after a decision offers 撤销 / Undo with a countdown (button and key ``u``); undoing gives the item back to the
reviewer, claimed, with nothing released; after the window the serve process releases the decision by itself
and an undo is refused with 409 ``review.undo_expired``. And signature applications sit in the main queue
(source filter ``signature``, SLA timer), decided on their own page.

Items go to the second tenant (``?tenant=fastpay``), as in test_review_workbench_ui.py."""

from __future__ import annotations

import re
import time

import httpx
from review_ui_support import PASSWORD, login
from sqlalchemy import select

from smsguard.review._tables import review_items, review_labels

Q = "tenant=fastpay"


def _login(server, username: str) -> httpx.Client:
    c = httpx.Client(base_url=server.url)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', c.get("/review/login").text)[1]
    r = c.post("/review/login", data={"username": username, "password": PASSWORD, "_csrf_token": token})
    assert r.status_code in (301, 302, 303), r.text
    return c


def _csrf(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html)[1]


def _row(server, item: int):
    with server.db.connect() as conn:
        return conn.execute(select(review_items.c.status, review_items.c.release_at, review_items.c.version)
                            .where(review_items.c.id == item)).one()


def _labelled(server, item: int) -> bool:
    with server.db.connect() as conn:
        return conn.execute(select(review_labels.c.item_id).where(review_labels.c.item_id == item)).first() is not None


def _wait_released(server, item: int, timeout: float = 25.0) -> None:
    deadline = time.monotonic() + timeout
    while _row(server, item).release_at is not None:
        assert time.monotonic() < deadline, f"item {item} was not released by the server within {timeout} s"
        time.sleep(0.3)


def _decide(c: httpx.Client, item: int, action: str, **extra: str) -> httpx.Response:
    html = c.get(f"/review/items/{item}?{Q}").text
    version = re.search(r'name="version" value="(\d+)"', html)[1]
    return c.post(f"/review/items/{item}/decide?{Q}",
                  data={"_csrf_token": _csrf(html), "version": version, "action": action, **extra})


def test_undo_over_http_within_the_window_and_refused_after_it(server) -> None:
    item = server.item("【测试】低息贷款，撤销测试一", term="贷款", tenant=server.other_tenant_id)
    c = _login(server, "bob")
    r = _decide(c, item, "reject", reason_code="illegal_loan")
    assert r.status_code in (302, 303)
    page = c.get(r.headers["location"]).text
    assert 'id="undo-form"' in page and f'name="ids" value="{item}"' in page and ">撤销 <kbd>u</kbd>" in page
    assert _row(server, item).status == "rejected" and _row(server, item).release_at is not None
    # a bad id is a clear error, not a 500
    r = c.post("/review/undo", data={"_csrf_token": _csrf(page), "ids": "abc"}, headers={"accept": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "review.ids"
    # within the window: back to pending, claimed by bob, nothing released
    r = c.post("/review/undo", data={"_csrf_token": _csrf(page), "ids": str(item)},
               headers={"accept": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["url"] == f"/review/items/{item}" and "已撤销" in r.json()["message"]  # "item … undone"
    status, release_at, _ = _row(server, item)
    assert (status, release_at) == ("pending", None) and not _labelled(server, item)
    assert "由你领取" in c.get(f"/review/items/{item}").text
    # "my decisions" offers the undo too while a decision is pending release (the banner is one page only)
    r = _decide(c, item, "reject", reason_code="illegal_loan")
    history = c.get("/review/history?mine=1").text
    assert f'id="undo-{item}"' in history and "等待生效" in history  # "pending release"
    r = c.post("/review/undo", data={"_csrf_token": _csrf(history), "ids": str(item)})
    assert r.status_code == 303 and r.headers["location"] == f"/review/items/{item}"
    assert _row(server, item).status == "pending"
    alice = _login(server, "alice")
    assert "领取人 <b>bob</b>" in alice.get(f"/review/items/{item}").text
    alice.close()
    # decide again and let the window pass: the server releases it with no manual step
    r = _decide(c, item, "approve")
    assert r.status_code in (302, 303)
    assert r.status_code in (302, 303)
    page = c.get(r.headers["location"]).text
    _wait_released(server, item)
    assert _row(server, item).status == "approved" and _labelled(server, item)
    r = c.post("/review/undo", data={"_csrf_token": _csrf(page), "ids": str(item)},
               headers={"accept": "application/json"})
    assert r.status_code == 409 and r.json()["code"] == "review.undo_expired"
    assert "no longer be undone" in r.json()["error"]
    # without JavaScript the same refusal is shown on the queue page
    r = c.post("/review/undo", data={"_csrf_token": _csrf(page), "ids": str(item)})
    assert r.status_code == 303 and "撤销被拒绝" in c.get(r.headers["location"]).text
    c.close()


def test_undo_in_the_browser_with_the_key_and_the_countdown(browser, server) -> None:
    item = server.item("【测试】快速贷款，撤销测试二", term="贷款", tenant=server.other_tenant_id)
    page = login(browser, server, "carol")
    page.goto(f"{server.url}/review/items/{item}?{Q}")
    page.keyboard.press("a")  # approve
    page.wait_for_selector("#undo-form")
    assert "Undo" in page.inner_text("#undo")  # the browser tests read the English
    left = int(page.inner_text("#undo-left"))
    assert 0 < left <= 10
    assert page.get_attribute("#undo", "aria-keyshortcuts") == "u"
    assert _row(server, item).status == "approved" and not _labelled(server, item)
    page.keyboard.press("u")
    page.wait_for_url(re.compile(rf"/review/items/{item}\?{Q}$"))
    assert "claimed by you" in page.inner_text("#lease")
    assert _row(server, item).status == "pending" and not _labelled(server, item)
    assert page.is_enabled("#approve")
    # decide again with the mouse-free loop; this time the countdown runs out
    page.keyboard.press("a")
    page.wait_for_selector("#undo-form")
    page.wait_for_selector("#undo:disabled", timeout=20_000)
    assert "released" in page.inner_text("#undo-status")
    _wait_released(server, item)
    assert _row(server, item).status == "approved" and _labelled(server, item)
    page.keyboard.press("u")  # disabled: nothing happens
    time.sleep(0.3)
    assert _row(server, item).status == "approved"
    page.context.close()


def test_signature_applications_are_in_the_main_queue_with_the_source_filter(browser, server) -> None:
    import os
    import uuid

    from smsguard import filing

    vault = filing.DocumentVault([(1, os.urandom(32))])  # the documents are not opened here
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    name = "签名" + uuid.uuid4().hex[:6]
    sig = filing.apply(server.db, vault, server.other_tenant_id, name=name, kind="company", use="self",
                       files=[("licence.pdf", pdf)], actor="test")
    with server.db.connect() as conn:
        item = conn.execute(select(review_items.c.id).where(review_items.c.source == "signature",
                                                            review_items.c.source_ref == str(sig["id"]))).scalar_one()
    page = login(browser, server, "alice")
    page.goto(f"{server.url}/review?{Q}&source=signature")
    assert page.locator("select[name=source]").input_value() == "signature"
    assert page.locator("select[name=source] option[value=signature]").inner_text() == "signature application"
    row = page.locator(f'tr[data-href^="/review/items/{item}?"]')
    assert "signature application" in row.inner_text() and name in row.inner_text()
    assert row.get_attribute("data-sla") in ("ok", "near", "breached")
    assert "left" in row.locator("td.sla").inner_text()
    page.goto(f"{server.url}/review?{Q}&source=api")
    assert page.locator(f'tr[data-href^="/review/items/{item}?"]').count() == 0
    # the item page sends the reviewer to the application's own page, where it is decided with its documents
    page.goto(f"{server.url}/review/items/{item}?{Q}")
    page.click("#signature-link")
    page.wait_for_url(re.compile(rf"/review/signatures/{sig['id']}$"))
    page.fill("#reason-input", "营业执照已过期")
    page.click("#reject")
    page.wait_for_url(re.compile(rf"/review/signatures/{sig['id']}$"))
    assert _row(server, item).status == "rejected"
    page.goto(f"{server.url}/review?{Q}&source=signature")
    assert page.locator(f'tr[data-href^="/review/items/{item}?"]').count() == 0
    page.context.close()
