"""The console's send records, webhook delivery log and API keys walked in a real chromium against a real
``smsguard serve`` (both backends): search a number that was sent to, open the webhook's dead letter and re-send
it to a receiver that now answers 200, create an API key (shown once) and revoke it through the confirmation
dialog; the dashboard chart shows the day's sends. Screenshots go to docs/ with SMSGUARD_CONSOLE_SCREENSHOTS=1."""

from __future__ import annotations

import re

import httpx
from console_support import PASSWORD, Client, Receiver, login, wait_for

from smsguard import storage, webhooks
from smsguard.webauth.testing import fill_login

SIG = "示例商城"


def test_search_then_webhook_log_then_resend_then_key_create_and_revoke(browser, console_server, tmp_path) -> None:
    db = console_server.db
    user, tid = console_server.new_customer("rec")

    # something sent (two numbers, delivered by the loopback gateway) and a webhook whose first event died
    http = Client(console_server, user)
    r = http.post_form("/console/compose", {"mode": "adhoc", "kind": "notification", "signature": SIG,
                                            "content": "您的验证已完成。", "numbers": "13912340001\n13912340002",
                                            "action": "submit"})
    assert r.status_code == 302, r.text
    bid = int(r.headers["location"].rsplit("/", 1)[1])
    wait_for(lambda: http.get(f"/console/batches/{bid}/progress").json()["final"], "the batch")
    http.close()
    receiver = Receiver()
    try:
        ep = webhooks.create_endpoint(db, tid, url=receiver.url, events=["mo.received"], actor="test")
        with db.begin() as conn:
            event_id = webhooks.emit(conn, tenant_id=tid, event_type="mo.received", subject="mo:browser",
                                     payload={"text": "TD"})
        wait_for(lambda: webhooks.list_dead_letters(db, tid)["deliveries"], "the dead letter")

        page = login(browser, console_server, user)
        # the landing page's chart counts today's two sends
        assert page.locator("#daily-chart g.bar").count() == 14
        assert page.locator("#daily-chart g.bar").last.get_attribute("data-total") == "2"

        # 1. send records: a full number, found by its hash, shown masked
        page.click("#nav-records")
        page.wait_for_url(re.compile(r"/console/records$"))
        page.fill("#r-phone", "139 1234 0002")
        page.select_option("#r-state", "delivered")
        page.click("#r-search")
        page.wait_for_url(re.compile(r"phone="))
        rows = page.locator("#records tbody tr[data-state]")
        assert rows.count() == 1
        assert "139****0002" in rows.first.inner_text() and "13912340002" not in rows.first.inner_text()
        assert rows.first.get_attribute("data-batch") == str(bid)
        console_server.shot(page, "records", tmp_path)
        page.fill("#r-phone", "12")
        page.click("#r-search")
        assert "请输入完整手机号" in page.inner_text("#r-error")  # "give a full mobile number"

        # 2. the webhook's delivery log: the dead letter with its attempts
        page.click("#nav-webhooks")
        page.wait_for_url(re.compile(r"/console/webhooks$"))
        dead = page.locator(f"#dead-letters tr[data-event='{event_id}']")
        assert dead.get_attribute("data-status") == "dead"
        page.click(f"#endpoints a[href='/console/webhooks/{ep['id']}']")
        page.wait_for_url(re.compile(rf"/console/webhooks/{ep['id']}$"))
        row = page.locator(f"#deliveries tr[data-event='{event_id}'][data-status='dead']")
        assert "500" in row.inner_text()
        console_server.shot(page, "webhook_log", tmp_path)

        # 3. re-send it, now that the receiver answers 200
        receiver.status = 200
        row.locator("button.resend").click()
        page.wait_for_url(re.compile(rf"/console/webhooks/{ep['id']}$"))
        assert "已重新投递" in page.inner_text("#flash")

        def delivered() -> bool:
            page.reload()
            return page.locator(f"#deliveries tr[data-event='{event_id}'][data-status='delivered']").count() == 1

        wait_for(delivered, "the re-sent delivery")
        assert receiver.got[-1] == event_id

        # 4. an API key: created and shown once, works, then revoked through the dialog
        page.click("#nav-keys")
        page.wait_for_url(re.compile(r"/console/keys$"))
        page.fill("#k-label", "订单系统")
        page.click("#k-create")
        key = page.inner_text("#new-key").strip()
        assert re.fullmatch(r"sg_[A-Za-z0-9_-]{43}", key)
        console_server.shot(page, "keys", tmp_path)
        api = httpx.get(f"{console_server.url}/v1/webhooks", headers={"Authorization": f"Bearer {key}"})
        assert api.status_code == 200 and api.json()["webhooks"][0]["id"] == ep["id"]
        page.goto(f"{console_server.url}/console/keys")
        assert key not in page.content()
        live = page.locator(f"#keys tr[data-prefix='{key[:12]}']")
        live.locator("button[data-confirm]").click()
        dialog = page.locator("dialog[open]")
        dialog.locator("button.danger").click()
        page.wait_for_url(re.compile(r"/console/keys$"))
        assert page.locator(f"#keys tr[data-prefix='{key[:12]}']").get_attribute("data-state") == "revoked"
        assert storage.find_key(db, key) is None
        page.click("#nav-stats")
        page.wait_for_url(re.compile(r"/console/stats$"))
        assert page.locator("#hourly-chart g.bar").count() == 24
        console_server.shot(page, "stats", tmp_path)
        page.context.close()

        # 5. every new page fits a 390 px phone (wide tables scroll inside themselves)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                    locale="zh-CN", bypass_csp=True)
        page = phone.new_page()
        fill_login(page, f"{console_server.url}/console", user, PASSWORD)
        page.wait_for_url(re.compile(r"/console/batches$"))
        for path in ("/console/batches", "/console/records?phone=13912340002", "/console/stats", "/console/webhooks",
                     f"/console/webhooks/{ep['id']}", "/console/keys"):
            page.goto(f"{console_server.url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path}: {width} px wide at 390 px"
        console_server.shot(page, "phone_records", tmp_path)
        phone.close()
    finally:
        receiver.close()
