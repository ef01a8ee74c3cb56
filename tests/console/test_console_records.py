"""Send records, the webhook delivery log and API keys in the console, over plain HTTP against the real
``smsguard serve`` (both backends; the loopback gateway delivers, the serve process's webhook dispatcher posts to a
local receiver): search by full number (keyed hash, shown masked), time, state and batch with paging; the
delivery log with attempts and status codes, a dead letter re-sent; keys listed by prefix, created (shown once)
and revoked; the dashboard's chart; roles, CSRF and tenant isolation on every new route."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from console_support import Receiver, now_local, wait_for
from sqlalchemy import text

from smsguard import storage, webhooks

SIG = "示例商城"
NUMBERS = [f"138001380{i:02d}" for i in range(55)]  # 55 numbers: more than one page of 50


@pytest.fixture(scope="module")
def sent(alice):
    """A delivered notification batch of shop-a to 55 numbers, a second one to one of them, and a third whose two
    numbers the loopback gateway reports undelivered (…9003) and expired (…9004)."""
    ids = []
    for numbers in ("\n".join(NUMBERS), NUMBERS[7], "13900139003\n13900139004"):
        r = alice.post_form("/console/compose", {"mode": "adhoc", "kind": "notification", "signature": SIG,
                                                 "content": "您的订单已发货。", "numbers": numbers, "action": "submit"})
        assert r.status_code == 302, r.text
        ids.append(int(r.headers["location"].rsplit("/", 1)[1]))
    for bid in ids:
        wait_for(lambda b=bid: alice.get(f"/console/batches/{b}/progress").json()["final"], f"batch {bid}")
    return ids


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-state="([a-z_]+)" data-batch="\d+">', html)


def test_search_by_full_number_finds_it_by_hash_and_shows_it_masked(alice, sent) -> None:
    big, small, _ = sent
    r = alice.get("/console/records", params={"phone": NUMBERS[7]})
    assert r.status_code == 200
    table = r.text.split('id="records-search"', 1)[1].split("</form>", 1)[1]
    assert NUMBERS[7] not in table  # only the search box keeps what was typed; every record shows it masked
    assert r.text.count('<span class="phone">138****8007</span>') == 2 + 1  # two records + the "records of" line
    assert set(re.findall(r'data-batch="(\d+)"', r.text)) == {str(big), str(small)}
    assert "【示例商城】" in r.text and "已送达" in r.text
    # a number in another format is the same number (+86, spaces)
    r2 = alice.get("/console/records", params={"phone": "+86 138 0013 8007"})
    assert re.findall(r'data-batch="(\d+)"', r2.text) == re.findall(r'data-batch="(\d+)"', r.text)


def test_filters_by_state_batch_and_time_and_pages_on(alice, sent) -> None:
    big, _, _ = sent
    r = alice.get("/console/records", params={"batch": str(big), "state": "delivered"})
    assert r.status_code == 200 and _rows(r.text) == ["delivered"] * 50
    nxt = re.search(r'href="(/console/records\?[^"]+)" id="r-next"', r.text)
    assert nxt is not None
    r = alice.get(nxt.group(1).replace("&amp;", "&"))
    assert _rows(r.text) == ["delivered"] * 5 and 'id="r-next"' not in r.text
    phones = set(re.findall(r'<span class="phone">(138\*{4}\d{4})</span>', r.text))
    assert phones == {f"138****80{i:02d}" for i in range(5)}  # the oldest five (seq 1..5)
    assert _rows(alice.get("/console/records", params={"batch": str(big), "state": "failed"}).text) == []
    today = f"{now_local():%Y-%m-%d}"
    tomorrow = f"{now_local(timedelta(days=1)):%Y-%m-%d}"
    assert len(_rows(alice.get("/console/records", params={"phone": NUMBERS[7], "since": today,
                                                          "until": today}).text)) == 2
    assert _rows(alice.get("/console/records", params={"phone": NUMBERS[7], "since": tomorrow}).text) == []


@pytest.mark.parametrize(("params", "where", "says"), [
    ({"phone": "5678"}, "query phone", "请输入完整手机号"),
    ({"since": "2026-13-01"}, "query since", "不是日期"),
    ({"since": "2026-11-20", "until": "2026-11-10"}, "query until", "早于开始日期"),
    ({"state": "sent"}, "query state", "状态必须是以下之一"),
    ({"batch": "x1"}, "query batch", "批次号"),
    ({"before": "x"}, "query before", "翻页标记"),
])
def test_bad_search_input_is_a_clear_400(alice, params, where, says) -> None:
    r = alice.get("/console/records", params=params)
    assert r.status_code == 400
    m = re.search(r'id="r-error" role="alert" data-where="([^"]*)">([^<]*)<', r.text)
    assert m is not None and m.group(1) == where and says in m.group(2)


def test_records_are_tenant_isolated(bob, victor, sent) -> None:
    big, _, _ = sent
    assert _rows(bob.get("/console/records", params={"phone": NUMBERS[7]}).text) == []
    assert _rows(bob.get("/console/records", params={"batch": str(big)}).text) == []
    assert len(_rows(victor.get("/console/records", params={"phone": NUMBERS[7]}).text)) == 2  # viewers read


def test_failure_codes_are_shown(alice, sent) -> None:
    r = alice.get("/console/records", params={"batch": str(sent[2])})
    rows = dict(re.findall(r'<tr data-state="([a-z]+)" data-batch="\d+">.*?<td class="code">(.*?)</td></tr>', r.text,
                           re.S))
    assert set(rows) == {"failed", "expired"}
    assert "<code>UNDELIV</code>" in rows["failed"] and "<code>EXPIRED</code>" in rows["expired"]


def test_dashboard_chart_counts_todays_sends(alice, bob, sent) -> None:
    r = alice.get("/console/stats")
    assert r.status_code == 200 and '<svg viewBox=' in r.text and 'id="hourly-chart"' in r.text
    today = f"{now_local():%Y-%m-%d}"
    row = re.search(rf'<tr data-day="{today}"><td>{today}</td><td class="num">(\d+)</td>(.*?)</tr>', r.text, re.S)
    assert row is not None and int(row.group(1)) >= 58
    assert int(re.search(r'data-group="delivered">(\d+)<', row.group(2)).group(1)) >= 56
    assert int(re.search(r'data-group="failed">(\d+)<', row.group(2)).group(1)) >= 2
    assert float(re.search(r'data-group="cost">([\d.,]+)<', row.group(2)).group(1).replace(",", "")) > 0
    hourly = r.text.split('id="hourly-chart"', 1)[1].split("</figure>", 1)[0]
    hours = [int(n) for n in re.findall(rf'data-day="{today}T\d\d" data-total="(\d+)"', hourly)]
    assert len(hours) == 24 and sum(hours) == int(row.group(1))  # today's hours add up to today
    assert re.search(r'<tr data-code="UNDELIV">.*?<td class="num">(\d+)</td>', r.text, re.S)
    page = alice.get("/console/batches").text
    assert 'id="daily-chart"' in page and re.search(rf'data-day="{today}" data-total="(\d+)"', page)
    assert "<script>" not in page and " style=" not in page  # CSP: no inline script or style
    other = bob.get("/console/stats").text
    assert re.search(rf'<tr data-day="{today}"><td>{today}</td><td class="num">0</td>', other)


# ---- webhooks ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hook(console_server):
    """A shop-a webhook on a local receiver that answers 500, and one event the dispatcher gives up on (the
    test server's retry window is a few seconds): a dead letter."""
    db = console_server.db
    receiver = Receiver()
    tenant = storage.get_tenant(db, "shop-a").id
    ep = webhooks.create_endpoint(db, tenant, url=receiver.url, events=["mo.received"], description="test",
                                  actor="test")
    with db.begin() as conn:
        event_id = webhooks.emit(conn, tenant_id=tenant, event_type="mo.received", subject="mo:test",
                                 payload={"text": "TD", "from": "138****8007"})
    # this endpoint's dead letter: another test's catch-all endpoint of shop-a (test_console_i18n_browser) gets the
    # event too, and its refused connection can give up first
    wait_for(lambda: any(d["event_id"] == event_id and d["webhook_id"] == ep["id"]
                         for d in webhooks.list_dead_letters(db, tenant)["deliveries"]), "the dead letter")
    yield {"endpoint": ep["id"], "event": event_id, "receiver": receiver, "tenant": tenant}
    receiver.close()


def test_webhook_pages_show_endpoints_dead_letters_and_attempts(alice, hook) -> None:
    ep, ev = hook["endpoint"], hook["event"]
    r = alice.get("/console/webhooks")
    assert r.status_code == 200 and f'href="/console/webhooks/{ep}"' in r.text
    dead = re.search(rf'<tr data-status="dead" data-event="{ev}".*?</tr>', r.text, re.S)
    assert dead is not None and 'class="small resend"' in dead.group(0)
    log = alice.get(f"/console/webhooks/{ep}", params={"status": "dead"})
    assert log.status_code == 200, log.text[-3000:]
    row = re.search(rf'<tr data-status="dead" data-event="{ev}".*?</tr>', log.text, re.S).group(0)
    attempts = int(re.search(r'<td class="num">(\d+)</td>', row).group(1))
    assert attempts >= 2 and "500" in row and row.count("<li>") == attempts
    assert hook["receiver"].got.count(ev) == attempts


def test_resend_a_dead_letter(alice, victor, bob, hook) -> None:
    ep, ev = hook["endpoint"], hook["event"]
    path = f"/console/webhooks/events/{ev}/resend"
    assert alice.post_form(path, {"webhook_id": str(ep)}, token=False).status_code == 403  # CSRF
    assert victor.post_form(path, {"webhook_id": str(ep)}).status_code == 403  # viewer
    assert bob.post_form(path, {"webhook_id": str(ep)}).status_code == 404  # another tenant's event
    assert alice.post_form(path, {"webhook_id": "abc"}).status_code == 400
    hook["receiver"].status = 200
    r = alice.post_form(path, {"webhook_id": str(ep)})
    assert r.status_code == 303 and r.headers["location"] == f"/console/webhooks/{ep}"

    def delivered() -> str | None:
        html = alice.get(f"/console/webhooks/{ep}", params={"status": "delivered"}).text
        m = re.search(rf'<tr data-status="delivered" data-event="{ev}".*?</tr>', html, re.S)
        return m.group(0) if m else None

    row = wait_for(delivered, "the re-sent delivery")
    assert "200" in row and hook["receiver"].got[-1] == ev  # the same event id, delivered this time


def test_add_a_webhook_in_the_console(console_server, alice, victor, bob) -> None:
    assert victor.post_form("/console/webhooks", {"url": "https://example.com/a", "events": "*"}).status_code == 403
    bad = alice.post_form("/console/webhooks", {"url": "ftp://example.com/a", "events": "*"})
    assert bad.status_code == 400 and re.search(r'id="w-error" role="alert">地址 \(URL\): must be an http', bad.text)
    none = alice.post_form("/console/webhooks", {"url": "https://example.com/a"})
    assert none.status_code == 400 and "事件: subscribe to at least one" in none.text
    r = alice.post_form("/console/webhooks", {"url": "https://example.com/b", "description": "订单回执",
                                              "events": ["message.delivered", "message.failed"]})
    assert r.status_code == 201
    secret = re.search(r'<code id="new-secret">(whsec_[A-Za-z0-9_-]+)</code>', r.text).group(1)
    tid = storage.get_tenant(console_server.db, "shop-a").id
    [ep] = [e for e in webhooks.list_endpoints(console_server.db, tid) if e["url"] == "https://example.com/b"]
    assert ep["events"] == ["message.delivered", "message.failed"] and ep["description"] == "订单回执"
    assert secret not in alice.get("/console/webhooks").text  # shown once
    assert "https://example.com/b" not in bob.get("/console/webhooks").text


def test_webhook_pages_are_tenant_isolated(bob, hook) -> None:
    assert bob.get(f"/console/webhooks/{hook['endpoint']}").status_code == 404
    page = bob.get("/console/webhooks").text
    assert f'href="/console/webhooks/{hook["endpoint"]}"' not in page and hook["event"] not in page


# ---- API keys ----------------------------------------------------------------------------------------------

def test_api_key_create_shown_once_then_revoke(console_server, alice, bob, victor) -> None:
    assert alice.post_form("/console/keys", {"label": ""}).status_code == 400
    assert victor.post_form("/console/keys", {"label": "x"}).status_code == 403
    assert alice.post_form("/console/keys", {"label": "订单系统"}, token=False).status_code == 403
    r = alice.post_form("/console/keys", {"label": "订单系统"})
    assert r.status_code == 201
    key = re.search(r'<code id="new-key">(sg_[A-Za-z0-9_-]{43})</code>', r.text).group(1)
    listing = alice.get("/console/keys").text
    assert key not in listing and f'<code>{key[:12]}…</code>' in listing  # shown once, then by prefix
    assert storage.find_key(console_server.db, key).tenant == "shop-a"
    key_id = next(k["id"] for k in storage.tenant_keys(console_server.db, storage.get_tenant(
        console_server.db, "shop-a").id) if k["prefix"] == key[:12])
    assert f'data-prefix="{key[:12]}"' not in bob.get("/console/keys").text
    assert bob.post_form(f"/console/keys/{key_id}/revoke", {"confirm": "yes"}).status_code == 404
    assert victor.post_form(f"/console/keys/{key_id}/revoke", {"confirm": "yes"}).status_code == 403
    ask = alice.post_form(f"/console/keys/{key_id}/revoke", {})  # no JavaScript: the server asks first
    assert ask.status_code == 200 and 'name="confirm" value="yes"' in ask.text
    assert storage.find_key(console_server.db, key) is not None
    r = alice.post_form(f"/console/keys/{key_id}/revoke", {"confirm": "yes"})
    assert r.status_code == 303
    assert storage.find_key(console_server.db, key) is None
    api = httpx.get(f"{console_server.url}/v1/webhooks", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 401
    assert alice.post_form(f"/console/keys/{key_id}/revoke", {"confirm": "yes"}).status_code == 409
    assert re.search(rf'data-prefix="{key[:12]}" data-state="revoked"', alice.get("/console/keys").text)
    with console_server.db.connect() as conn:
        kinds = [r.event_type for r in conn.execute(text(
            "SELECT event_type FROM audit_events WHERE subject = :s ORDER BY id"), {"s": f"api_key:{key_id}"})]
    assert kinds == ["api_key.created", "api_key.revoked"]


def test_a_keys_last_use_is_shown(console_server, alice) -> None:
    r = alice.post_form("/console/keys", {"label": "last use"})
    key = re.search(r'<code id="new-key">(sg_[A-Za-z0-9_-]{43})</code>', r.text).group(1)
    row = re.compile(rf'data-prefix="{key[:12]}".*?<td class="last-used">([^<]*)</td>', re.S)
    assert row.search(alice.get("/console/keys").text).group(1) == "从未"
    api = httpx.get(f"{console_server.url}/v1/webhooks", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200
    shown = row.search(alice.get("/console/keys").text).group(1)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", shown) and shown[:10] == f"{now_local():%Y-%m-%d}"


def test_operator_keys_are_listed_but_not_revocable_here(console_server, alice) -> None:
    key, _ = storage.create_key(console_server.db, "shop-a", label="ops", role="admin")
    tid = storage.get_tenant(console_server.db, "shop-a").id
    key_id = next(k["id"] for k in storage.tenant_keys(console_server.db, tid) if k["prefix"] == key[:12])
    page = alice.get("/console/keys").text
    assert f'data-prefix="{key[:12]}" data-state="live"' in page and f'id="revoke-{key_id}"' not in page
    assert alice.post_form(f"/console/keys/{key_id}/revoke", {"confirm": "yes"}).status_code == 403
    assert storage.find_key(console_server.db, key) is not None
