"""Webhook settings walked in a real chromium against a real ``smsguard serve`` (both backends): add an endpoint,
edit its URL and events, rotate its secret (the new one shown once, the grace end shown), then delete it through
the confirmation dialog (first kept with "Keep it", then deleted). Screenshots go to docs/ with
SMSGUARD_CONSOLE_SCREENSHOTS=1."""

from __future__ import annotations

import re

from console_support import login

from smsguard import webhooks


def test_edit_rotate_delete(browser, console_server, tmp_path) -> None:
    db = console_server.db
    user, tid = console_server.new_customer("whs")

    page = login(browser, console_server, user)
    page.goto(f"{console_server.url}/console/webhooks")
    page.fill("#w-url", "https://crm.example.com/hooks/sms")
    page.uncheck("#webhook-form input[value='*']")
    page.check("#webhook-form input[value='mo.received']")
    page.click("#w-create")
    first_secret = page.inner_text("#new-secret").strip()
    [ep] = webhooks.list_endpoints(db, tid)
    page.click(f"#endpoints a[href='/console/webhooks/{ep['id']}']")
    page.wait_for_url(re.compile(rf"/console/webhooks/{ep['id']}$"))

    # edit: the form holds the current settings
    assert page.input_value("#we-url") == "https://crm.example.com/hooks/sms"
    assert page.is_checked("#wh-edit input[value='mo.received']")
    page.fill("#we-url", "https://crm.example.com/hooks/sms-v2")
    page.check("#wh-edit input[value='optout.added']")
    page.fill("#we-description", "CRM")
    page.click("#we-save")
    page.wait_for_url(re.compile(rf"/console/webhooks/{ep['id']}$"))
    assert page.inner_text("#flash").strip() == f"webhook #{ep['id']} 已保存"  # "… saved"
    got = webhooks.get_endpoint(db, tid, ep["id"])
    assert (got["url"], got["events"], got["description"]) == (
        "https://crm.example.com/hooks/sms-v2",
        ["mo.received", "optout.added"],
        "CRM",
    )
    page.fill("#we-url", "not a url")
    page.evaluate("document.getElementById('we-url').type = 'text'")  # past the browser's own check: the server's
    page.click("#we-save")
    assert page.inner_text("#we-error").startswith("地址 (URL): ")  # the field, named in Chinese
    page.goto(f"{console_server.url}/console/webhooks/{ep['id']}")

    # rotate with the default grace (24 hours): the new secret once, and until when the old one signs
    assert page.input_value("#wr-grace") == "86400"
    page.click("#wr-rotate")
    box = page.inner_text("#new-secret-box")
    secret = page.inner_text("#new-secret").strip()
    assert secret.startswith("whsec_") and secret != first_secret
    assert "新旧两个密钥" in box  # "both the new and the old secret", and until when
    console_server.shot(page, "webhook_settings", tmp_path)
    page.goto(f"{console_server.url}/console/webhooks/{ep['id']}")
    assert secret not in page.content() and page.locator("#new-secret").count() == 0

    # delete: the dialog first; "Keep it" keeps it, the red button deletes
    page.click("#wd-delete")
    page.locator("dialog[open] #wd-dialog-no").click()
    assert webhooks.list_endpoints(db, tid)
    page.click("#wd-delete")
    page.locator("dialog[open] #wd-dialog-yes").click()
    page.wait_for_url(re.compile(r"/console/webhooks$"))
    assert f"webhook #{ep['id']} 已删除" in page.inner_text("#flash")  # "… deleted"
    assert webhooks.list_endpoints(db, tid) == []
    assert page.locator(f"#endpoints a[href='/console/webhooks/{ep['id']}']").count() == 0
    page.context.close()
