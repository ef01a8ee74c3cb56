"""The reviewer workbench's pages against a real ``smsguard serve``: security headers, validated filters, canned
reasons, decisions that never re-post, leases given back at logout and on leaving, expired leases.

Items go to the second tenant: the other browser tests claim "next" in the first one and must not meet these."""

from __future__ import annotations

import re
import time

import httpx
from review_ui_support import LEASE, PASSWORD, login


def http_login(server, username: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=server.url)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', c.get("/review/login").text)[1]
    r = c.post("/review/login", data={"username": username, "password": PASSWORD, "_csrf_token": token})
    assert r.status_code in (301, 302, 303), r.text
    return c, token


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', page_html)[1]


def test_review_pages_send_the_consoles_security_headers(server) -> None:
    c, _ = http_login(server, "alice")
    item = server.item("【测试】贷款广告一", term="贷款", tenant=server.other_tenant_id)
    for path in ("/review/login", "/review", f"/review/items/{item}"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["x-content-type-options"] == "nosniff"
    c.close()


def test_a_bad_filter_value_is_an_error_on_the_page(server) -> None:
    c, _ = http_login(server, "alice")
    for query, where in (("status=approved", "query status"), ("priority=abc", "query priority"),
                         ("severity=urgent", "query severity")):
        r = c.get(f"/review?{query}")
        assert r.status_code == 400
        assert 'id="filter-error"' in r.text and where in r.text
    assert c.get("/review?severity=high&q=%E8%B4%B7%E6%AC%BE").status_code == 200
    c.close()


def test_search_and_severity_filters_narrow_the_queue(server) -> None:
    needle = server.item("【测试】澳门百 家 樂，注册就送", term="百 家 樂", category="gambling", severity="medium",
                         tenant=server.other_tenant_id)
    other = server.item("【测试】低息贷款快速到账", term="贷款", tenant=server.other_tenant_id)
    c, _ = http_login(server, "alice")
    page = c.get("/review", params={"q": "百家乐"}).text
    assert f"/review/items/{needle}?" in page and f"/review/items/{other}?" not in page
    page = c.get("/review", params={"severity": "medium", "category": "gambling"}).text
    assert f"/review/items/{needle}?" in page and f"/review/items/{other}?" not in page
    c.close()


def test_rejecting_with_a_canned_reason_and_no_reason_never_reposts(server) -> None:
    item = server.item("【测试】加微信abc123领取优惠", term="加微信", category="contact", tenant=server.other_tenant_id)
    c, _ = http_login(server, "alice")
    html = c.get(f"/review/items/{item}").text
    assert 'value="private_contact"' in html  # the contact category's canned reason is offered
    assert '<select name="category"' in html and "完全乱写" not in html
    version = re.search(r'name="version" value="(\d+)"', html)[1]
    # no reason at all: the answer is a redirect back to the item (so a reload does not post again) saying why
    r = c.post(f"/review/items/{item}/decide", data={"_csrf_token": csrf_of(html), "version": version,
                                                     "action": "reject"})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/review/items/{item}")
    shown = c.get(r.headers["location"]).text
    assert 'id="conflict"' in shown and "needs a reason" in shown
    assert server.status(item) == "pending"
    # a made-up category is refused the same way
    r = c.post(f"/review/items/{item}/decide", data={"_csrf_token": csrf_of(shown), "version": version,
                                                     "action": "approve", "category": "完全乱写的类别"})
    assert r.status_code == 303 and "unknown category" in c.get(r.headers["location"]).text
    assert server.status(item) == "pending"
    r = c.post(f"/review/items/{item}/decide", data={"_csrf_token": csrf_of(shown), "version": version,
                                                     "action": "reject", "reason_code": "private_contact"})
    assert r.status_code in (302, 303)
    assert server.status(item) == "rejected"
    c.close()


def test_logging_out_gives_back_the_items_the_reviewer_held(server) -> None:
    item = server.item("【测试】无抵押贷款，当天放款", term="贷款", tenant=server.other_tenant_id)
    alice, _ = http_login(server, "alice")
    html = alice.get(f"/review/items/{item}").text
    assert "由你领取" in html  # "claimed by you": zh-CN, the default over plain HTTP
    bob, _ = http_login(server, "bob")
    assert "已被 alice 领取" in bob.get(f"/review/items/{item}").text
    r = alice.post("/review/logout", data={"_csrf_token": csrf_of(html)})
    assert r.status_code in (301, 302, 303)
    assert "由你领取" in bob.get(f"/review/items/{item}").text  # at once, not after the lease
    alice.close()
    bob.close()


def test_leaving_the_page_gives_the_item_back_and_an_expired_lease_disables_the_buttons(browser, server) -> None:
    item = server.item("【测试】信用卡代还，低息周转", term="代还", tenant=server.other_tenant_id)
    alice = login(browser, server, "alice")
    alice.goto(f"{server.url}/review/items/{item}")
    assert "claimed by you" in alice.locator("#lease").inner_text()
    alice.click("text=← queue")  # leaving the item page sends the release beacon
    alice.wait_for_url(re.compile(r"/review\?"))
    bob = login(browser, server, "bob")
    deadline = time.monotonic() + LEASE - 0.5
    while True:  # well before alice's lease would have run out, bob gets the item
        bob.goto(f"{server.url}/review/items/{item}")
        if "claimed by you" in bob.locator("#lease").inner_text():
            break
        assert time.monotonic() < deadline, "the item stayed locked after alice left it"
        time.sleep(0.2)
    # bob waits out his own lease: the buttons go dead and say why, and the timer leaves the message alone
    bob.wait_for_selector("#lease.expired", timeout=(LEASE + 3) * 1000)
    assert bob.locator("#approve").is_disabled() and bob.locator("#reject").is_disabled()
    message = bob.locator("#lease").inner_text()
    assert "expired" in message
    time.sleep(1.2)
    assert bob.locator("#lease").inner_text() == message
    for p in (alice, bob):
        p.context.close()


def test_mouse_reject_without_a_reason_asks_for_one_and_help_is_a_dialog(browser, server) -> None:
    item = server.item("【测试】秒批贷款，不查征信", term="不查征信", tenant=server.other_tenant_id)
    page = login(browser, server, "alice")
    page.goto(f"{server.url}/review/items/{item}")
    page.click("#reject")
    assert page.url.endswith(f"/review/items/{item}") or f"/review/items/{item}?" in page.url
    assert page.evaluate("document.activeElement.id") == "reason-code"
    assert server.status(item) == "pending"
    page.keyboard.press("Escape")
    page.locator("body").focus()
    page.keyboard.press("?")
    assert page.locator("#help").get_attribute("role") == "dialog"
    assert page.evaluate("document.activeElement.id") == "help"
    page.keyboard.press("Escape")
    assert page.locator("#help").is_hidden()
    page.select_option("#reason-code", "illegal_loan")
    page.click("#reject")
    page.wait_for_selector(".flash")
    assert server.status(item) == "rejected"
    page.context.close()


def test_team_stats_page_and_metrics(server) -> None:
    item = server.item("【测试】稳赚不赔的投资机会", term="稳赚不赔", category="fraud", tenant=server.other_tenant_id)
    c, _ = http_login(server, "carol")
    html = c.get(f"/review/items/{item}").text
    version = re.search(r'name="version" value="(\d+)"', html)[1]
    r = c.post(f"/review/items/{item}/decide", data={"_csrf_token": csrf_of(html), "version": version,
                                                     "action": "reject", "reason_code": "fraud"})
    assert r.status_code in (302, 303)
    page = c.get("/review/stats")
    assert page.status_code == 200
    assert 'data-reviewer="carol"' in page.text and 'data-queue="fraud"' in page.text
    assert page.headers["x-frame-options"] == "DENY"
    time.sleep(0.1)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "# TYPE smsguard_review_decisions_per_hour gauge" in metrics
    assert "smsguard_review_open_items" in metrics
    c.close()


def test_bulk_decisions_history_and_a_seniors_release_through_the_pages(server) -> None:
    items = [server.item(f"【测试】批量审核{i} 贷款", term="贷款", tenant=server.other_tenant_id) for i in range(3)]
    c, _ = http_login(server, "carol")
    page = c.get("/review", params={"tenant": "fastpay"}).text
    assert 'id="bulk-form"' in page and f'name="ids" value="{items[0]}"' in page
    r = c.post("/review/bulk?tenant=fastpay", data={"_csrf_token": csrf_of(page), "action": "reject",
                                                    "reason_code": "illegal_loan", "ids": [str(i) for i in items]})
    assert r.status_code == 303
    assert "已拒绝 3 条" in c.get(r.headers["location"]).text
    assert [server.status(i) for i in items] == ["rejected"] * 3
    history = c.get("/review/history", params={"mine": "1", "q": "批量审核"}).text
    assert all(f'data-item="{i}"' in history for i in items) and "违规贷款营销" in history
    held = server.item("【测试】被占用的条目 贷款", term="贷款", tenant=server.other_tenant_id)
    alice, _ = http_login(server, "alice")
    assert "由你领取" in alice.get(f"/review/items/{held}").text
    html = c.get(f"/review/items/{held}").text
    assert 'id="force-release"' in html
    r = c.post(f"/review/items/{held}/force-release", data={"_csrf_token": csrf_of(html)})
    assert r.status_code == 303 and "已退回队列" in c.get(r.headers["location"]).text
    for client in (c, alice):
        client.close()


def test_the_queue_page_stays_live(browser, server) -> None:
    c, _ = http_login(server, "alice")
    before = c.get("/review/summary", params={"tenant": "fastpay"}).json()
    item = server.item("【测试】实时刷新的新条目 贷款", term="贷款", tenant=server.other_tenant_id)
    after = c.get("/review/summary", params={"tenant": "fastpay"}).json()
    assert after["total"] == before["total"] + 1 and item in after["ids"]
    assert c.get("/review/summary", params={"status": "approved"}).status_code == 400
    c.close()
    page = login(browser, server, "alice")
    page.goto(f"{server.url}/review?tenant=fastpay")
    total = int(page.locator("#count-total").inner_text())
    server.item("【测试】又一条新条目 贷款", term="贷款", tenant=server.other_tenant_id)
    page.wait_for_selector("#live:not([hidden])", timeout=15_000)  # the page polls every 10 s
    assert int(page.locator("#count-total").inner_text()) == total + 1
    assert "queue changed" in page.locator("#live").inner_text()
    page.context.close()
