"""Issue 19 point 4 for the reviewer workbench (Debian's chromium): every page in Simplified Chinese by default and
in English after the switch, at a phone's 390 × 844 with no sideways scrolling, and the item's times in its
tenant's zone, not UTC. ``SMSGUARD_CONSOLE_SCREENSHOTS=1`` writes the phone screenshots to docs/screenshots/
(else tmp_path): ``review_<page>_<zh|en>.png``."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from review_ui_support import PASSWORD

from smsguard.engine import PROJECT_ROOT
from smsguard.webauth.testing import PHONE, assert_fits_phone, fill_login, in_language

SHOTS = PROJECT_ROOT / "docs" / "screenshots" if os.environ.get("SMSGUARD_CONSOLE_SCREENSHOTS") == "1" else None


_t = in_language
_fits = assert_fits_phone


def _check(page, lang: str, name: str, selector: str, text: str, tmp_path: Path) -> None:
    assert page.get_attribute("html", "lang") == lang, name
    assert _t(lang, "smsguard review") in page.title(), f"{name}: {page.title()!r}"
    found = page.inner_text(selector)
    assert text in found, f"{name} ({lang}): {text!r} not in {found!r}"
    _fits(page, f"{name} ({lang})")
    target = (SHOTS or tmp_path) / f"review_{name}_{'zh' if lang.startswith('zh') else 'en'}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))


def test_every_workbench_page_in_chinese_then_english_at_phone_width(browser, server, tmp_path) -> None:
    item = server.item("【测试】无抵押贷款当天放款，详询客服", term="无抵押贷款", severity="high")
    pages = [
        ("queue", "/review", "#claim-next", "Claim next"),
        ("item", f"/review/items/{item}", "#approve", "Approve"),
        ("history", "/review/history", "h1", "Decided items"),
        ("mine", "/review/history?mine=1", "h1", "My decisions"),
        ("stats", "/review/stats", "h1", "Team stats"),
        ("signatures", "/review/signatures", "h1", "Signature applications"),
        ("templates", "/review/templates", "h1", "Template versions waiting for review"),
    ]
    context = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN", timezone_id="Europe/Berlin"
    )
    page = context.new_page()
    page.goto(f"{server.url}/review/login")
    _check(page, "zh-CN", "login", "h1", "审核员登录", tmp_path)
    fill_login(page, f"{server.url}/review", "carol", PASSWORD)
    page.wait_for_url(re.compile(r"/review/?\??$"))
    for lang in ("zh-CN", "en"):
        if lang == "en":
            page.click("#lang-en")
            page.wait_for_selector("#lang-zh")
        for name, path, selector, msgid in pages:
            page.goto(f"{server.url}{path}")
            page.wait_for_load_state("networkidle")
            _check(page, lang, name, selector, _t(lang, msgid), tmp_path)
    # the item's time is its tenant's (Asia/Shanghai, the default), whatever the browser's zone (Berlin)
    page.goto(f"{server.url}/review/items/{item}")
    waiting = page.inner_text("#waiting")
    assert "Asia/Shanghai" in waiting and "UTC" not in waiting
    shown = datetime.strptime(waiting.split(" (")[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert abs((datetime.now(UTC) - shown).total_seconds()) < 600
    # the script's messages follow the page: the bulk bar's counter in English, then in Chinese
    page.goto(f"{server.url}/review")
    page.locator(".pick").first.check()
    assert page.inner_text("#selected-count") == "1 selected"
    page.click("#lang-zh")
    page.wait_for_selector("#lang-en")
    page.locator(".pick").first.check()
    assert page.inner_text("#selected-count") == "已选 1 条"
    context.close()
