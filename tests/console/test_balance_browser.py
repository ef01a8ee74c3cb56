"""The balance and statement pages walked in a real chromium against a real ``smsguard serve`` (both backends): a
tenant topped up through billing, one batch delivered (charged) and one scheduled for tomorrow (held); the
navigation's figure, the balance page's amounts, low-balance warning and price list, the statement filtered by
type, and its CSV download. Screenshots go to docs/ with SMSGUARD_CONSOLE_SCREENSHOTS=1."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from console_support import PASSWORD, Client, login, now_local, wait_for

from smsguard import billing
from smsguard.webauth.testing import fill_login

SIG = "示例商城"


def test_balance_statement_and_csv_after_a_top_up_a_charge_and_a_hold(browser, console_server, tmp_path) -> None:
    db = console_server.db
    user, tid = console_server.new_customer("bb")
    # 5.00 in, an alert below 4.00, 1.50 a segment to mobile numbers for notifications
    billing.top_up(db, tid, billing.to_micros("5"), actor="test", reference="pay-browser")
    billing.set_settings(db, tid, actor="test", low_balance=billing.to_micros("4"))
    billing.set_price(db, tid, "mobile", "notification", billing.to_micros("1.5"), actor="test")

    http = Client(console_server, user)
    compose = {
        "mode": "adhoc",
        "kind": "notification",
        "signature": SIG,
        "content": "您的订单已发货。",
        "action": "submit",
    }
    r = http.post_form("/console/compose", {**compose, "numbers": "13800138001\n13800138002"})
    assert r.status_code == 302, r.text
    sent = int(r.headers["location"].rsplit("/", 1)[1])
    tomorrow = now_local(timedelta(days=1)).replace(hour=10, minute=0, second=0)
    r = http.post_form(
        "/console/compose", {**compose, "numbers": "13800138003", "schedule_at": f"{tomorrow:%Y-%m-%dT%H:%M}"}
    )
    assert r.status_code == 302, r.text
    scheduled = int(r.headers["location"].rsplit("/", 1)[1])
    wait_for(lambda: http.get(f"/console/batches/{sent}/progress").json()["final"], "the sent batch")
    http.close()
    wait_for(lambda: billing.get_balance(db, tid)["held"] == "1.5000", "the sent batch's hold settled")

    page = login(browser, console_server, user)
    # 5.00 − 3.00 charged − 1.50 held = 0.50 available, under the 4.00 threshold
    assert page.inner_text("#nav-balance-figure") == "0.5000"
    assert "warn" in page.get_attribute("#nav-balance-figure", "class")
    page.click("#nav-balance")
    page.wait_for_url(re.compile(r"/console/balance$"))
    assert page.get_attribute("#b-available", "data-value") == "0.5000"
    assert page.get_attribute("#b-held", "data-value") == "1.5000"
    assert page.get_attribute("#b-balance", "data-value") == "2.0000"
    assert page.locator("#low-balance").is_visible() and "4.0000" in page.inner_text("#low-balance")
    assert page.inner_text('#prices tr[data-carrier="mobile"] td[data-kind="notification"]') == "1.5000"
    assert page.locator("#prices tbody tr").count() == len(billing.CARRIERS)
    console_server.shot(page, "balance", tmp_path)

    page.click("#to-statement")
    page.wait_for_url(re.compile(r"/console/statement$"))
    kinds = [k.get_attribute("data-kind") for k in page.locator("#statement tbody tr[data-kind]").all()]
    assert kinds[0] == "topup" and kinds.count("hold") == 2 and "charge" in kinds
    today = f"{now_local():%Y-%m-%d}"
    assert page.locator("#statement tbody tr").first.inner_text().startswith(today)  # the tenant's date
    page.select_option("#s-kind", "hold")
    page.fill("#s-since", today)
    page.fill("#s-until", today)
    page.click("#s-filter")
    page.wait_for_url(re.compile(r"kind=hold"))
    holds = page.locator("#statement tbody tr[data-kind]")
    assert holds.count() == 2
    assert holds.nth(0).locator('td[data-col="amount"]').inner_text() == "3.0000"
    assert f"批次 #{scheduled}" in holds.nth(1).inner_text()  # batch #N
    console_server.shot(page, "statement", tmp_path)

    with page.expect_download() as dl:
        page.click("#s-csv")
    rows = list(csv.reader(io.StringIO(dl.value.path().read_text("utf-8-sig"))))
    assert rows[0][:4] == ["id", "time", "type", "amount (CNY)"]
    assert [(r[2], r[3], r[8]) for r in rows[1:]] == [
        ("hold", "3.0000", f"batch:{sent}"),
        ("hold", "1.5000", f"batch:{scheduled}"),
    ]
    assert dl.value.suggested_filename == f"statement-{today}-{today}-hold.csv"
    page.context.close()

    # both pages fit a 390 px phone (the tables scroll inside themselves)
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN", bypass_csp=True
    )
    page = phone.new_page()
    fill_login(page, f"{console_server.url}/console", user, PASSWORD)
    page.wait_for_url(re.compile(r"/console/batches$"))
    for path in ("/console/balance", "/console/statement"):
        page.goto(f"{console_server.url}{path}")
        assert page.locator("#b-available, #statement").count() == 1
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path}: {width} px wide at 390 px"
    console_server.shot(page, "phone_statement", tmp_path)
    phone.close()
