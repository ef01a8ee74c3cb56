"""Issue 19 point 4 in the browser (Debian's chromium): every console page in Simplified Chinese by default and in
English after the switch, at a phone's 390 × 844 with no sideways scrolling, and English from Accept-Language when
no choice was made. ``SMSGUARD_CONSOLE_SCREENSHOTS=1`` writes the phone screenshots to docs/screenshots/ (else
tmp_path): ``console_<page>_<zh|en>.png``.

The expected text is the catalogue's (``smsguard.i18n.gettext`` in the page's language), so a page that forgot to
translate, or translated into the wrong language, fails here."""

from __future__ import annotations

import os
import re
from pathlib import Path

from console_support import PASSWORD, Client

from smsguard.engine import PROJECT_ROOT
from smsguard.webauth.testing import PHONE, assert_fits_phone, fill_login, in_language

SHOTS = PROJECT_ROOT / "docs" / "screenshots" if os.environ.get("SMSGUARD_CONSOLE_SCREENSHOTS") == "1" else None


_t = in_language
_fits = assert_fits_phone


def _check(page, lang: str, name: str, heading: str, tmp_path: Path) -> None:
    """The page is in ``lang`` (its <html lang>, its heading, the header's navigation) and fits the phone."""
    assert page.get_attribute("html", "lang") == lang, name
    assert heading in page.inner_text("h1"), f"{name} ({lang}): {heading!r} not in {page.inner_text('h1')!r}"
    if page.locator("#nav-batches").count():
        assert page.inner_text("#nav-batches") == _t(lang, "Batches")
    _fits(page, f"{name} ({lang})")
    target = (SHOTS or tmp_path) / f"console_{name}_{'zh' if lang.startswith('zh') else 'en'}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))  # the viewport: what a phone shows first, and a small file


def _objects(server) -> dict[str, int]:
    """One of everything a detail page shows, made through the console's own forms."""
    alice = Client(server, "alice")
    try:
        r = alice.post_form(
            "/console/compose",
            {
                "mode": "adhoc",
                "kind": "notification",
                "signature": "示例商城",
                "content": "您的订单已发货，请注意查收。",
                "numbers": "13812340001",
                "action": "submit",
            },
        )
        batch = int(r.headers["location"].rsplit("/", 1)[1])
        r = alice.post_form(
            "/console/templates",
            {
                "name": "发货通知",
                "kind": "notification",
                "signature": "示例商城",
                "body": "${姓名}您好，您的订单已发货。",
            },
        )
        template = int(r.headers["location"].rsplit("/", 1)[1])
        files = {"file": ("i18n.csv", "手机号,姓名\n13812340001,张伟\n1381234,李娜\n".encode())}
        r = alice.http.post("/console/lists", data={"_csrf_token": alice.token, "name": "i18n"}, files=files)
        lst = int(r.headers["location"].rsplit("/", 1)[1])
        r = alice.post_form("/console/webhooks", {"url": "http://127.0.0.1:9/i18n", "events": "*"})
        webhook = int(re.findall(r'href="/console/webhooks/(\d+)"', r.text)[-1])
    finally:
        alice.close()
    return {"batch": batch, "template": template, "list": lst, "webhook": webhook}


def _pages(o: dict[str, int]) -> list[tuple[str, str, str, dict]]:
    """(name, path, the heading's message id, its values) of every console page."""
    return [
        ("batches", "/console/batches", "Batches", {}),
        ("batch", f"/console/batches/{o['batch']}", "Batch #%(id)s", {"id": o["batch"]}),
        ("compose", "/console/compose", "Compose a batch", {}),
        ("templates", "/console/templates", "Templates", {}),
        ("template", f"/console/templates/{o['template']}", "Template #%(id)s", {"id": o["template"]}),
        ("lists", "/console/lists", "Contact lists", {}),
        ("list", f"/console/lists/{o['list']}", "Contact list #%(id)s", {"id": o["list"]}),
        ("optouts", "/console/optouts", "Opt-outs", {}),
        ("signatures", "/console/signatures", "Signatures", {}),
        ("records", "/console/records", "Send records", {}),
        ("stats", "/console/stats", "Sends per day", {}),
        ("webhooks", "/console/webhooks", "Webhook endpoints", {}),
        ("webhook", f"/console/webhooks/{o['webhook']}", "Webhook #%(id)s", {"id": o["webhook"]}),
        ("keys", "/console/keys", "API keys", {}),
        ("balance", "/console/balance", "Balance", {}),
        ("statement", "/console/statement", "Statement", {}),
    ]


def test_every_page_in_chinese_then_english_at_phone_width(browser, console_server, tmp_path) -> None:
    server = console_server
    pages = _pages(_objects(server))
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN", timezone_id="Europe/Berlin"
    )
    page = context.new_page()
    page.goto(f"{server.url}/console/login")
    _check(page, "zh-CN", "login", _t("zh-CN", "Customer console"), tmp_path)  # nobody chose: Chinese
    assert page.inner_text("#login") == "登录"
    fill_login(page, f"{server.url}/console", "alice", PASSWORD)
    page.wait_for_url(re.compile(r"/console/batches$"))
    for lang in ("zh-CN", "en"):
        if lang == "en":  # the switch: a CSRF form in the header, back to the same page
            page.click("#lang-en")
            page.wait_for_selector("#lang-zh")
            assert {c["name"]: c["value"] for c in context.cookies()}["sg_lang"] == "en"
        for name, path, msgid, values in pages:
            page.goto(f"{server.url}{path}")
            page.wait_for_load_state("networkidle")
            _check(page, lang, name, _t(lang, msgid, **values), tmp_path)
    # the script's own text follows the page: the compose counter's "(typing…)" in English, then in Chinese
    page.goto(f"{server.url}/console/compose")
    page.fill("#content", "您好")
    assert "(typing…)" in page.inner_text("#counter") or "(checked by the server)" in page.inner_text("#counter")
    page.click("#lang-zh")
    page.wait_for_selector("#lang-en")
    assert page.url.endswith("/console/compose") and page.inner_text("h1") == "新建发送批次"
    page.fill("#content", "您好")
    page.wait_for_function("document.getElementById('counter-source').textContent.includes('（')")
    context.close()


def test_english_from_accept_language_when_nothing_was_chosen(browser, console_server, tmp_path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    page.goto(f"{console_server.url}/console/login")
    assert page.get_attribute("html", "lang") == "en" and page.inner_text("#login") == "Log in"
    fill_login(page, f"{console_server.url}/console", "alice", PASSWORD + "!")
    assert "wrong user name or password" in page.inner_text(".error")  # the route's own message, in English too
    fill_login(page, f"{console_server.url}/console", "alice", PASSWORD)
    page.wait_for_url(re.compile(r"/console/batches$"))
    assert page.inner_text("#nav-records") == "Send records"
    page.click("#lang-zh")  # the choice outlives the browser's header
    page.wait_for_selector("#lang-en")
    assert page.inner_text("#nav-records") == "发送记录"
    context.close()
