"""The customer console in a real browser (Debian's chromium via Playwright) against a real ``smsguard serve``
and the loopback sending pipeline: upload a CSV with bad rows, compose a marketing batch without 退订 and see
it blocked with the reason highlighted, fix it, schedule it, watch it complete live, download the report.

``SMSGUARD_CONSOLE_SCREENSHOTS=1 pytest tests/console`` writes the README's screenshots to ``docs/console_*.png``
(install a CJK font first: ``apt-get install fonts-wqy-microhei``); otherwise they go to tmp_path.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from console_support import login, now_local

CSV = "\n".join([
    "手机号,姓名",
    "13812340001,张伟",
    "13812340002,王芳",
    "1381234,李娜",  # too short
    "13812340001,张伟",  # duplicate of line 2
    "021-61234567,赵磊",  # a landline
    "15912340003,刘洋",
    "18612349003,陈静",
]) + "\n"


def test_upload_compose_block_fix_schedule_watch_download(browser, console_server, tmp_path):
    server = console_server
    page = login(browser, server, "alice")

    # -- contact list with bad rows: per-line error report -----------------------------------------------------
    path = tmp_path / "会员.csv"
    path.write_text(CSV, encoding="utf-8")
    page.click("#nav-lists")
    page.fill("#list-name", "会员名单")
    page.set_input_files("#list-file", str(path))
    page.click("#upload")
    page.wait_for_url("**/console/lists/*")
    assert page.inner_text("#count-valid") == "4"
    assert page.inner_text("#count-invalid") == "2"
    assert page.inner_text("#count-duplicates") == "1"
    rows = page.locator("#rejects tbody tr")
    assert rows.count() == 3
    assert page.locator('#rejects tr[data-line="5"]').inner_text().count("duplicate") >= 1
    # the customer's own report shows each rejected line as it was uploaded (masked only in logs and audit)
    assert "1381234" in page.locator('#rejects tr[data-line="4"]').inner_text()
    server.shot(page, "list", tmp_path)
    with page.expect_download() as dl:
        page.click("#rejects-csv")
    report = dl.value.path().read_text("utf-8-sig")
    assert report.splitlines()[0] == "line,kind,code,reason,value" and len(report.splitlines()) == 4

    # -- compose a marketing message without 退订: blocked, reason highlighted -----------------------------------
    page.click("#nav-compose")
    page.check("#mode-adhoc")
    page.select_option("#kind", "marketing")
    page.fill("#signature", "示例商城")
    page.fill("#content", "双11大促，全场5折起，会员再享95折！")
    page.fill("#numbers", "13812340001\n15912340003\n18612349003\n12345")
    page.wait_for_selector('#preview [data-decision="block"]')
    mark = page.locator('#preview mark[data-codes*="marketing.optout_missing"]')
    assert mark.is_visible()
    assert page.locator('#preview li[data-code="marketing.optout_missing"]').is_visible()
    # the counter shows the server's numbers (engine: 【示例商城】 + 20 characters, one UCS-2 segment)
    page.wait_for_function("document.getElementById('counter-source').textContent.includes('服务器')")
    assert page.inner_text("#chars") == "26" and page.inner_text("#segments") == "1"
    # blocked is an error of the message, shown once by it; no cost is offered for a message that cannot go
    assert page.inner_text("#content-error").startswith("短信内容: 审核拦截")
    assert page.locator("#est-cost").count() == 0
    assert "1 个号码被拒" in page.inner_text("#rejected-numbers")
    assert "#4 12345" in page.inner_text("#rejected-numbers")  # typed here: shown as typed
    page.click("#submit")  # the server screens again and refuses: no batch is created
    page.wait_for_selector("#content-error")
    assert "审核拦截" in page.inner_text("#content-error")
    assert page.locator('#verdict mark[data-codes*="marketing.optout_missing"]').count() == 1
    server.shot(page, "compose_blocked", tmp_path)

    # -- fix it; a time inside quiet hours warns; schedule a few seconds ahead ---------------------------------
    page.fill("#content", "双11大促，全场5折起，会员再享95折！回T退订")
    page.wait_for_selector('#preview [data-decision="pass"]')
    assert page.inner_text("#est-recipients") == "3"
    # cost = Σ carrier count × segments × the policy's price for that carrier (shown line by line)
    lines = [page.inner_text(f"#est-{c}") for c in ("mobile", "unicom", "telecom", "broadnet", "virtual", "other")
             if page.locator(f"#est-{c}").count()]
    expected = sum(int(n) * float(price) for n, price in (line.split(" × ") for line in lines))
    assert page.inner_text("#est-cost") == f"{expected:.4f} CNY"
    quiet = server.quiet_start + timedelta(minutes=20)
    page.fill("#schedule_at", f"{quiet:%Y-%m-%dT%H:%M:%S}")
    page.wait_for_selector("#quiet-warning")
    assert "之间不下发" in page.inner_text("#quiet-warning")  # "… are not released between …"
    when = now_local(timedelta(seconds=4))
    page.fill("#schedule_at", f"{when:%Y-%m-%dT%H:%M:%S}")
    page.wait_for_function(f"(document.getElementById('est-when') || {{}}).textContent?.includes('{when:%H:%M:%S}')")
    assert page.locator("#quiet-warning").count() == 0
    server.shot(page, "compose", tmp_path)
    page.click("#submit")
    page.wait_for_url("**/console/batches/*")

    # -- watch it complete without reloading the page -----------------------------------------------------------
    page.evaluate("window.__sameDocument = true")
    assert page.locator("#state").get_attribute("data-state") in ("scheduled", "releasing", "approved", "sending")
    page.wait_for_function("document.getElementById('batch').dataset.final === 'true'", timeout=45_000)
    assert page.evaluate("window.__sameDocument === true")  # updated live, never reloaded
    assert page.inner_text("#state") == "已完成"  # done
    assert page.inner_text("#n-delivered") == "2"
    assert "UNDELIV" in page.inner_text("#failures")  # the loopback gateway fails numbers ending 9003
    assert page.locator('#chart path[data-series="delivered"]').count() == 1
    server.shot(page, "batch", tmp_path)

    # -- download the report: masked numbers only ---------------------------------------------------------------
    with page.expect_download() as dl:
        page.click("#report-csv")
    rows = list(csv.DictReader(io.StringIO(dl.value.path().read_text("utf-8-sig"))))
    assert [r["status"] for r in rows].count("delivered") == 2
    assert {r["phone"] for r in rows} == {"138****0001", "159****0003", "186****9003"}
    page.context.close()


def test_template_check_before_saving(browser, console_server, tmp_path):
    page = login(browser, console_server, "alice")
    page.click("#nav-templates")
    page.fill("#t-name", "短链促销")
    page.select_option("#t-kind", "marketing")
    page.fill("#t-signature", "示例商城")
    page.fill("#t-body", "${姓名}您好，秒杀专场点击 http://t.cn/abc 抢购，回T退订")
    page.click("#t-check")
    page.wait_for_selector('#t-preview [data-decision="block"]')
    hit = page.locator('#t-preview mark[data-codes*="link.shortener"]')
    assert hit.inner_text() == "http://t.cn/abc"
    console_server.shot(page, "template", tmp_path)
    page.fill("#t-body", "${姓名}您好，会员日全场8折，回T退订")
    page.wait_for_selector('#t-preview [data-decision="pass"]')
    page.click("#t-save")
    page.wait_for_url("**/console/templates/*")
    assert page.inner_text("#template-status") == "已通过"  # approved
    page.context.close()
