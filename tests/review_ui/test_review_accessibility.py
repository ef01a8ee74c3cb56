"""The reviewer pages scanned by axe-core (npm, pinned by tests/review_ui/axe/package-lock.json) in Debian's
chromium: no serious or critical violation (contrast ≥ 4.5:1, names, labels, landmarks, dialog semantics), and
every action reachable from the keyboard alone."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from review_ui_support import PASSWORD

from smsguard.webauth.testing import fill_login

AXE_DIR = Path(__file__).resolve().parent / "axe"


@pytest.fixture(scope="module")
def axe_script() -> Path:
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        if shutil.which("npm") is None:
            pytest.fail("npm is needed for the accessibility scan (apt-get install npm)", pytrace=False)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AXE_DIR, check=True,
                       timeout=300)
    return script


def scan(page, axe_script: Path) -> list[dict]:
    page.add_script_tag(path=str(axe_script))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_review_pages_have_no_serious_accessibility_violations(browser, server, axe_script) -> None:
    item = server.item("【测试】澳门百 家 樂，注册就送888", term="百 家 樂", category="gambling", severity="high",
                       tenant=server.other_tenant_id)
    # axe is injected as a script: the pages' CSP (script-src 'self') would refuse it, so this context bypasses it
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    page.goto(f"{server.url}/review/login")
    found = {"login": scan(page, axe_script)}
    fill_login(page, f"{server.url}/review", "carol", PASSWORD)
    page.wait_for_url(re.compile(r"/review/?\??$"))
    found["queue"] = scan(page, axe_script)
    page.goto(f"{server.url}/review/items/{item}")
    found["item"] = scan(page, axe_script)
    page.keyboard.press("?")
    found["help dialog"] = scan(page, axe_script)
    page.keyboard.press("Escape")
    # the page after a decision: the 撤销 / Undo banner with its countdown
    low = server.item("【测试】低息贷款，无障碍扫描", term="贷款", tenant=server.other_tenant_id)
    page.goto(f"{server.url}/review/items/{low}?tenant=fastpay")
    page.keyboard.press("a")
    page.wait_for_selector("#undo-form")
    found["undo banner"] = scan(page, axe_script)
    page.goto(f"{server.url}/review/stats")
    found["stats"] = scan(page, axe_script)
    context.close()
    assert {k: v for k, v in found.items() if v} == {}, json.dumps(found, ensure_ascii=False, indent=1)


def test_every_action_works_from_the_keyboard_alone(browser, server) -> None:
    item = server.item("【测试】无抵押贷款秒批，详询客服", term="无抵押贷款", tenant=server.other_tenant_id)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    fill_login(page, f"{server.url}/review", "carol", PASSWORD)
    page.wait_for_url(re.compile(r"/review/?\??$"))
    page.goto(f"{server.url}/review?tenant=fastpay")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("无抵押")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=%E6%97%A0"))
    page.locator("body").focus()
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/review/items/{item}"))
    # Tab reaches the canned reason, the note and every button; the choice and the reject are keystrokes
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reason-code"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    assert server.status(item) == "rejected"
    context.close()
