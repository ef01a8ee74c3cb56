"""Signature filing end to end in a real chromium against a real ``smsguard serve``: a customer applies in
the console with a PDF, a reviewer rejects it with a reason in the review UI, the customer reads the reason
and resubmits, the reviewer approves, and then the API sends under that signature while an unapproved one is
refused (``signature.not_approved``); then a template edit is rejected with feedback, resubmitted and
approved."""

from __future__ import annotations

import re
import uuid

import httpx
from console_support import PASSWORD, login

from smsguard.webauth.testing import fill_login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EXE = b"MZ\x90\x00" + b"\x00" * 60


def reviewer(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    page = context.new_page()
    fill_login(page, f"{server.url}/review", "rita", PASSWORD)
    page.wait_for_url(re.compile(r"/review/?\??$"))
    return page


def test_apply_reject_resubmit_approve_send(browser, console_server, tmp_path) -> None:
    from smsguard.console._users import create_user
    from smsguard.storage import create_key, create_tenant

    tenant = f"sig-{uuid.uuid4().hex[:8]}"  # its own tenant: filing switches it to approved-only signatures
    create_tenant(console_server.db, tenant)
    user = f"u{uuid.uuid4().hex[:8]}"
    create_user(console_server.db, user, PASSWORD, tenant=tenant)
    key, _ = create_key(console_server.db, tenant)

    customer = login(browser, console_server, user)
    customer.click("#nav-signatures")
    customer.wait_for_url(re.compile(r"/console/signatures$"))
    # an executable named .pdf is refused, with the reason on the page
    customer.fill("#s-name", "星河书店")
    customer.select_option("#s-type", "company")
    customer.set_input_files("#s-documents", files=[{"name": "licence.pdf", "mimeType": "application/pdf",
                                                     "buffer": EXE}])
    customer.click("#s-apply")
    assert "only PDF, PNG or JPEG" in customer.inner_text("#s-error")
    customer.set_input_files("#s-documents", files=[{"name": "营业执照.pdf", "mimeType": "application/pdf",
                                                     "buffer": PDF}])
    customer.click("#s-apply")
    customer.wait_for_url(re.compile(r"/console/signatures/\d+$"))
    sid = int(customer.url.rsplit("/", 1)[1])
    assert customer.inner_text("#s-status") == "待审核"
    console_server.shot(customer, "signature_pending", tmp_path)

    rev = reviewer(browser, console_server)
    rev.click("text=签名申请")  # "signature applications", the workbench in its default language
    rev.wait_for_url(re.compile(r"/review/signatures$"))
    rev.click(f"tr[data-signature='{sid}'] a >> nth=0")
    rev.wait_for_url(re.compile(rf"/review/signatures/{sid}$"))
    assert "营业执照.pdf" in rev.inner_text("#documents")
    with rev.expect_download() as dl:  # served as an attachment, not rendered
        rev.click("#documents a")
    assert dl.value.suggested_filename == "营业执照.pdf"
    rev.click("#reject")  # no reason: refused, the reviewer is told why
    assert "needs a reason" in rev.inner_text("#conflict")
    rev.fill("#reason-input", "营业执照照片模糊，请上传清晰的扫描件")
    rev.click("#reject")
    rev.wait_for_selector("#status.status-rejected")
    console_server.shot(rev, "review_signature", tmp_path)

    customer.reload()
    assert customer.inner_text("#s-status") == "被拒"
    assert "营业执照照片模糊" in customer.inner_text("#s-reason")
    console_server.shot(customer, "signature_rejected", tmp_path)
    customer.set_input_files("#r-documents", files=[{"name": "scan.pdf", "mimeType": "application/pdf",
                                                    "buffer": PDF + b"% clearer\n"}])
    customer.click("#s-resubmit")
    customer.wait_for_selector("#s-status:text('待审核')")

    rev.reload()
    rev.click("#approve")
    rev.wait_for_selector("#status.status-approved")
    rev.fill("input[name=channel]", "cmcc-main")
    rev.select_option("select[name=status]", "filed")
    rev.click("#channel-form button")
    rev.wait_for_selector("#channels td:text('cmcc-main')")

    customer.reload()
    assert customer.inner_text("#s-status") == "已通过"
    assert "已报备" in customer.inner_text("#s-channels")
    console_server.shot(customer, "signature_approved", tmp_path)

    headers = {"Authorization": f"Bearer {key}"}
    body = {"content": "【星河书店】您的订单已发货，请注意查收。", "numbers": ["13812345678"], "kind": "notification"}
    r = httpx.post(f"{console_server.url}/v1/batches", headers=headers, json=body)
    assert r.status_code == 201, r.text
    body["content"] = "【未报备书店】您的订单已发货，请注意查收。"
    r = httpx.post(f"{console_server.url}/v1/batches", headers=headers, json=body)
    assert r.status_code == 403 and r.json()["code"] == "signature.not_approved", r.text

    # templates likewise: an edit is a version a reviewer decides; the feedback shows; resubmit; approve
    r = httpx.post(f"{console_server.url}/v1/templates", headers=headers, json={
        "name": "ship", "kind": "notification", "signature": "星河书店", "body": "${姓名}您好，您的订单已发货。"})
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    tid = r.json()["id"]
    customer.goto(f"{console_server.url}/console/templates/{tid}")
    customer.fill("#v-body", "${姓名}您好，订单已发货，详情见 http://x.cn")
    customer.click("#v-submit")
    customer.wait_for_selector("#template-versions tr[data-status=pending]")
    rev.goto(f"{console_server.url}/review/templates")
    row = rev.locator("#template-versions tr", has_text="http://x.cn")
    row.locator("input[name=reason]").fill("含未报备链接，请删除")
    row.locator("button[value=reject]").click()
    rev.wait_for_url(re.compile(r"/review/templates$"))
    customer.reload()
    assert "含未报备链接，请删除" in customer.inner_text("#template-versions")
    assert customer.inner_text("#template-status") == "已通过"  # v1 keeps sending meanwhile
    console_server.shot(customer, "template_rejected", tmp_path)
    customer.fill("#v-body", "${姓名}您好，订单已发货，请在App内查看。")
    customer.click("#v-submit")
    customer.wait_for_selector("#template-versions tr[data-status=pending]")
    rev.reload()
    rev.locator("#template-versions tr", has_text="App内查看").locator("button[value=approve]").click()
    rev.wait_for_url(re.compile(r"/review/templates$"))
    r = httpx.get(f"{console_server.url}/v1/templates/{tid}", headers=headers)
    assert r.json()["body"] == "${姓名}您好，订单已发货，请在App内查看。"
    versions = httpx.get(f"{console_server.url}/v1/templates/{tid}/versions", headers=headers).json()
    assert [v["status"] for v in versions] == ["approved", "rejected", "approved"]
