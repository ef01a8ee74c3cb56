"""Contact lists walked in a real chromium against a real ``smsguard serve`` (both backends): upload two lists,
see the preview masked, download the export (the numbers in full, formulas neutralized), merge the two into a new
list through the form, then delete one through its confirmation dialog; the pages fit a 390 px phone.
Screenshots go to docs/ with SMSGUARD_CONSOLE_SCREENSHOTS=1."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from console_support import PASSWORD, login

from smsguard.webauth.testing import fill_login


def _upload(page, url: str, name: str, path: Path) -> int:
    page.goto(f"{url}/console/lists")
    page.fill("#list-name", name)
    page.set_input_files("#list-file", str(path))
    page.click("#upload")
    page.wait_for_url(re.compile(r"/console/lists/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def test_preview_export_merge_delete(browser, console_server, tmp_path) -> None:
    user, _ = console_server.new_customer("lists")
    first, second = tmp_path / "vip.csv", tmp_path / "autumn.csv"
    first.write_text('手机号,姓名\n13612340001,"=HYPERLINK(""http://x"",""点我"")"\n13612340002,李四\n', "utf-8")
    second.write_text("phone,city\n136 1234 0002,北京\n13612340003,上海\n", "utf-8")

    page = login(browser, console_server, user)
    a = _upload(page, console_server.url, "vip", first)
    # the preview: masked numbers with their variable values
    rows = page.locator("#preview tbody tr")
    assert rows.count() == 2
    assert rows.first.locator(".phone").inner_text() == "136****0001"
    assert "13612340001" not in page.content()
    console_server.shot(page, "list_preview", tmp_path)

    with page.expect_download() as got:
        page.click("#export-csv")
    download = got.value
    assert download.suggested_filename == f"list-{a}.csv"
    body = Path(download.path()).read_text("utf-8-sig")
    assert list(csv.reader(io.StringIO(body))) == [
        ["phone", "姓名"],
        ["13612340001", '\'=HYPERLINK("http://x","点我")'],
        ["13612340002", "李四"],
    ]

    b = _upload(page, console_server.url, "autumn", second)
    page.goto(f"{console_server.url}/console/lists")
    page.fill("#merge-name", "vip + autumn")
    page.check(f"#merge-form input[value='{a}']")
    page.check(f"#merge-form input[value='{b}']")
    console_server.shot(page, "lists_merge", tmp_path)
    page.click("#merge")
    page.wait_for_url(re.compile(r"/console/lists/\d+$"))
    merged = int(page.url.rsplit("/", 1)[1])
    assert merged not in (a, b)
    assert "3 个联系人，去除 1 个重复" in page.inner_text("#flash")  # "3 contacts, 1 duplicates dropped"
    assert page.inner_text("#count-valid") == "3" and page.locator("#merged-note").count() == 1
    assert [t.strip() for t in page.locator("#preview thead th").all_inner_texts()][-2:] == ["姓名", "city"]

    # delete the second source list through the dialog; the merged list keeps its copies
    page.goto(f"{console_server.url}/console/lists/{b}")
    page.click("#delete-list")
    page.locator("dialog[open] button.danger").click()
    page.wait_for_url(re.compile(r"/console/lists$"))
    assert page.locator(f"#lists a[href='/console/lists/{b}']").count() == 0
    assert page.locator(f"#lists a[href='/console/lists/{merged}']").count() == 1
    page.context.close()

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN", bypass_csp=True
    )
    page = phone.new_page()
    fill_login(page, f"{console_server.url}/console", user, PASSWORD)
    page.wait_for_url(re.compile(r"/console/batches$"))
    for path in ("/console/lists", f"/console/lists/{merged}"):
        page.goto(f"{console_server.url}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path}: {width} px wide at 390 px"
    phone.close()
