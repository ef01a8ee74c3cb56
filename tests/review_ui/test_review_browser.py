"""The reviewer UI in a real browser (Playwright + Debian chromium) against a real ``smsguard serve``."""

from __future__ import annotations

import os
import re
import time

import httpx
from review_ui_support import LEASE, login

from smsguard.engine import PROJECT_ROOT

# `SMSGUARD_REVIEW_SCREENSHOT=1 pytest tests/review_ui -k highlights` refreshes the README's screenshot (install a
# CJK font first, e.g. `apt-get install fonts-wqy-microhei`); otherwise the screenshot goes to tmp_path.
SCREENSHOT = PROJECT_ROOT / "docs" / "review_item.png"


def test_log_in_claim_see_highlights_and_approve_with_a_shortcut(browser, server, tmp_path) -> None:
    # a decided look-alike first, so the page shows a similar item
    earlier = server.item("【速达金融】无需抵押，凭身份证即可申请贷款，最高30万，次日放款，回T退订", term="贷款",
                          tenant=server.other_tenant_id)
    bob = login(browser, server, "bob")
    bob.goto(f"{server.url}/review/items/{earlier}")
    bob.fill("#reason", "无抵押贷款营销，未备案")
    bob.click("#reject")
    bob.wait_for_selector(".flash")
    bob.context.close()
    text = "【速达金融】无需抵押，凭身份证即可申请贷款，最高50万，当天放款，回T退订"
    item = server.item(text, term="贷款", batch_size=25_00)
    page = login(browser, server, "alice")
    # filters live in the URL and survive the claim
    page.goto(f"{server.url}/review?tenant=acme-mall&category=loan")
    assert page.locator("#count-total").inner_text() != "0"
    page.keyboard.press("n")
    page.wait_for_url(re.compile(rf"/review/items/{item}\?.*tenant=acme-mall"))
    assert page.locator("mark.hit").all_inner_texts() == ["贷款"]
    assert "claimed by you" in page.locator("#lease").inner_text()
    assert "138****5678" in page.locator("#batch").inner_text()
    assert "loan" in page.locator("#classifier").inner_text()
    assert page.locator("#signature").inner_text() == "【速达金融】"
    assert "无抵押贷款营销" in page.locator("#similar").inner_text()
    shot = SCREENSHOT if os.environ.get("SMSGUARD_REVIEW_SCREENSHOT") else tmp_path / "review_item.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.wait_for_selector(".flash")
    assert f"item {item} approved" in page.locator(".flash").inner_text()
    assert server.status(item) == "approved"
    page.context.close()


def test_reject_needs_a_reason_and_r_asks_for_it(browser, server) -> None:
    item = server.item("【安心贷】信用卡逾期？专业代还，低息周转，回T退订", term="代还")
    page = login(browser, server, "alice")
    page.goto(f"{server.url}/review/items/{item}")
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reason-code"  # the canned reasons first
    page.keyboard.press("Tab")  # then the free-text note, which alone is enough too
    assert page.evaluate("document.activeElement.id") == "reason"
    page.keyboard.type("代还信用卡属违规金融营销")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    assert server.status(item) == "rejected"
    page.context.close()


def test_two_browsers_one_item_the_loser_sees_a_conflict(browser, server) -> None:
    item = server.item("【惠民贷】公积金贷款预审通过，可贷20万，回T退订", term="贷款")
    alice = login(browser, server, "alice")
    bob = login(browser, server, "bob")
    alice.goto(f"{server.url}/review/items/{item}")
    assert "claimed by you" in alice.locator("#lease").inner_text()
    bob.goto(f"{server.url}/review/items/{item}")
    assert "claimed by alice" in bob.locator("#readonly").inner_text()  # invisible to others while leased
    time.sleep(LEASE + 0.3)  # alice walks away; her lease runs out
    bob.goto(f"{server.url}/review/items/{item}")
    assert "claimed by you" in bob.locator("#lease").inner_text()
    bob.click("#approve")
    bob.wait_for_selector(".flash")
    assert alice.locator("#reject").is_disabled()  # her lease ran out: the page says so and stops her
    # a tab whose timer never ran (a sleeping laptop) still posts: the server's version check catches it
    alice.evaluate("document.querySelectorAll('#decide button').forEach((b) => { b.disabled = false; })")
    alice.fill("#reason", "诱导贷款")
    alice.click("#reject")  # her page is stale
    conflict = alice.locator("#conflict")
    conflict.wait_for()
    assert re.search(r"bob already approved item \d+", conflict.inner_text())
    assert server.status(item) == "approved"
    alice.context.close()
    bob.context.close()


def test_four_eyes_high_risk_needs_a_second_senior_approver(browser, server) -> None:
    item = server.item("【鑫达投资】内部消息，稳赚不赔，日收益3%", term="稳赚不赔", severity="high",
                       category="fraud")
    alice = login(browser, server, "alice")
    alice.goto(f"{server.url}/review/items/{item}")
    assert "four-eyes" in alice.locator("#approvals").inner_text()
    alice.keyboard.press("a")
    alice.wait_for_selector(".flash")
    assert "first approval recorded" in alice.locator(".flash").inner_text()
    assert server.status(item) == "second"
    bob = login(browser, server, "bob")  # a plain reviewer may not give the second approval
    bob.goto(f"{server.url}/review/items/{item}")
    assert "needs a senior" in bob.locator("#readonly").inner_text()
    carol = login(browser, server, "carol")
    carol.goto(f"{server.url}/review/items/{item}")
    assert "1 of 2" in carol.locator("#approvals").inner_text()
    carol.keyboard.press("a")
    carol.wait_for_selector(".flash")
    assert server.status(item) == "approved"
    for p in (alice, bob, carol):
        p.context.close()


def test_auditor_is_read_only_and_logout_ends_the_session(browser, server) -> None:
    item = server.item("【易借钱】急用钱？秒批5千元，不查征信", term="不查征信")
    page = login(browser, server, "audrey")
    page.goto(f"{server.url}/review/items/{item}")
    assert "read-only" in page.locator("#readonly").inner_text()
    assert page.locator("#approve").count() == 0
    page.click("#logout")
    page.wait_for_url(re.compile(r"/review/login"))
    page.goto(f"{server.url}/review")
    assert "/review/login" in page.url
    page.context.close()


def test_forms_without_a_csrf_token_are_refused_and_the_api_stays_key_based(server) -> None:
    with httpx.Client(base_url=server.url) as c:
        c.get("/review/login")  # sets the CSRF cookie
        r = c.post("/review/login", data={"username": "alice", "password": "correct horse battery"})
        assert r.status_code == 403
        token = re.search(r'name="_csrf_token" value="([^"]+)"', c.get("/review/login").text)[1]
        r = c.post("/review/login", data={"username": "alice", "password": "wrong", "_csrf_token": token})
        assert r.status_code == 401
    # the JSON API is not behind CSRF: a missing key is a 401, not a 403
    assert httpx.post(f"{server.url}/v1/screen", json={"text": "x"}).status_code == 401
