"""Webhook settings in the console over plain HTTP (issue 19 point 3), both backends, against the real ``serve``
whose dispatcher posts to a local receiver: edit the URL and events, rotate the secret (shown once; the receiver
verifies the next event with the new secret AND the old one during the grace period), delete after a
confirmation; CSRF, the customer role and tenant isolation on each."""

from __future__ import annotations

import re

import pytest
from console_support import Client, Receiver, wait_for

from smsguard import storage, webhooks


@pytest.fixture
def receiver():
    r = Receiver(status=200)
    yield r
    r.close()


def _create(c: Client, url: str) -> tuple[int, str]:
    r = c.post_form("/console/webhooks", {"url": url, "events": "mo.received", "description": "crm"})
    assert r.status_code == 201, r.text[:400]
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', r.text).group(1)
    wid = max(int(i) for i in re.findall(r'href="/console/webhooks/(\d+)"', r.text))
    return wid, secret


def _emit(console_server, tenant: str) -> str:
    db = console_server.db
    tid = storage.get_tenant(db, tenant).id
    with db.begin() as conn:
        return webhooks.emit(
            conn, tenant_id=tid, event_type="mo.received", subject="mo:settings", payload={"text": "hello"}
        )


def test_edit_rotate_and_delete(console_server, alice: Client, victor: Client, bob: Client, receiver) -> None:
    wid, old = _create(alice, receiver.url)
    page = alice.get(f"/console/webhooks/{wid}").text
    assert 'id="wh-edit"' in page and 'id="wh-rotate"' in page and old not in page  # the secret: once only
    # the settings sections in the default language (Chinese) and, from Accept-Language, in English
    assert "<h2>设置</h2>" in page and "<h2>签名密钥</h2>" in page and ">轮换密钥</button>" in page
    assert "Rotate the secret" not in page and "Delete the webhook" not in page
    en = alice.get(f"/console/webhooks/{wid}", headers={"Accept-Language": "en"}).text
    assert "<h2>Signing secret</h2>" in en and ">Rotate the secret</button>" in en and ">7 days</option>" in en

    # edit: another URL path and every event; a bad URL comes back with its field named
    new_url = receiver.url + "/v2"
    form = {"url": new_url, "events": "*", "description": "crm v2", "enabled": "on"}
    assert alice.http.post(f"/console/webhooks/{wid}/edit", data=form).status_code == 403  # no CSRF token
    assert victor.post_form(f"/console/webhooks/{wid}/edit", form).status_code == 403
    assert bob.post_form(f"/console/webhooks/{wid}/edit", form).status_code == 404
    r = alice.post_form(f"/console/webhooks/{wid}/edit", {**form, "url": "ftp://x"})
    assert r.status_code == 400 and 'id="we-error" role="alert">地址 (URL): ' in r.text  # the field named in Chinese
    r = alice.post_form(f"/console/webhooks/{wid}/edit", form)
    assert r.status_code == 303, r.text[:300]
    ep = webhooks.get_endpoint(console_server.db, storage.get_tenant(console_server.db, "shop-a").id, wid)
    assert (ep["url"], ep["events"], ep["description"], ep["enabled"]) == (new_url, ["*"], "crm v2", True)

    # rotate with an hour of grace: the new secret shown once, both sign the next event
    assert victor.post_form(f"/console/webhooks/{wid}/rotate", {"grace": "3600"}).status_code == 403
    assert bob.post_form(f"/console/webhooks/{wid}/rotate", {"grace": "3600"}).status_code == 404
    assert alice.post_form(f"/console/webhooks/{wid}/rotate", {"grace": "12"}).status_code == 400
    r = alice.post_form(f"/console/webhooks/{wid}/rotate", {"grace": "3600"})
    assert r.status_code == 200, r.text[:300]
    new = re.search(r'<code id="new-secret">([^<]+)</code>', r.text).group(1)
    assert new != old and "请求会同时用新旧两个密钥签名" in r.text  # "signed with both the new and the old secret"
    assert new not in alice.get(f"/console/webhooks/{wid}").text
    _emit(console_server, "shop-a")
    header, body = wait_for(lambda: receiver.signed[-1] if receiver.signed else None, "the signed event")
    assert webhooks.verify(header, body, new) and webhooks.verify(header, body, old)

    # rotate again without grace: only the newest secret signs
    r = alice.post_form(f"/console/webhooks/{wid}/rotate", {"grace": "0"})
    newest = re.search(r'<code id="new-secret">([^<]+)</code>', r.text).group(1)
    seen = len(receiver.signed)
    _emit(console_server, "shop-a")
    header, body = wait_for(lambda: receiver.signed[-1] if len(receiver.signed) > seen else None, "the next event")
    assert webhooks.verify(header, body, newest)
    assert not webhooks.verify(header, body, new) and not webhooks.verify(header, body, old)

    # delete: a page that asks first, then gone (the log stays for the API, the console lists it no more)
    assert victor.post_form(f"/console/webhooks/{wid}/delete", {"confirm": "yes"}).status_code == 403
    assert bob.post_form(f"/console/webhooks/{wid}/delete", {"confirm": "yes"}).status_code == 404
    r = alice.post_form(f"/console/webhooks/{wid}/delete", {})
    assert r.status_code == 200 and 'name="confirm" value="yes"' in r.text
    assert "无法撤销" in r.text  # "cannot be undone"
    assert alice.get(f"/console/webhooks/{wid}").status_code == 200
    r = alice.post_form(f"/console/webhooks/{wid}/delete", {"confirm": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/console/webhooks"
    assert alice.get(f"/console/webhooks/{wid}").status_code == 404
    assert f'href="/console/webhooks/{wid}"' not in alice.get("/console/webhooks").text
    # deleted: a new event fans out to every live endpoint in emit's transaction, and to this one no more
    before = _deliveries_to(console_server, wid)
    _emit(console_server, "shop-a")
    assert _deliveries_to(console_server, wid) == before


def _deliveries_to(console_server, wid: int) -> int:
    from sqlalchemy import func, select

    from smsguard.webhooks._tables import deliveries

    with console_server.db.connect() as conn:
        return conn.execute(select(func.count()).where(deliveries.c.endpoint_id == wid)).scalar_one()
