"""The console's balance and statement pages over plain HTTP against the real ``smsguard serve`` (both backends):
available / held / balance as billing keeps them, the tenant's price list, the low-balance warning at billing's
threshold, the navigation's figure, the statement's date / type filter and cursor, its CSV download (formula
cells neutralized), bad filters answered 400 with where, and tenant isolation. Each test tenant is a fresh one:
topping up shop-a would make the other console tests' batches prepaid."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import timedelta

import pytest
from console_support import PASSWORD, Client, now_local, wait_for

from smsguard import billing, storage

SIG = "示例商城"


def _tenant(db) -> tuple[int, str]:
    from smsguard.console._users import create_user, set_time_zone

    name = f"bal-{uuid.uuid4().hex[:8]}"
    storage.create_tenant(db, name)
    set_time_zone(db, name, "Asia/Shanghai")
    user = f"u{uuid.uuid4().hex[:8]}"
    create_user(db, user, PASSWORD, tenant=name)
    return storage.get_tenant(db, name).id, user


@pytest.fixture(scope="module")
def prepaid(console_server):
    """A tenant topped up 10.00 twice (one with a formula-like reference), a low-balance threshold of 50, a
    price of its own, and one delivered batch of two messages (hold, charge, release)."""
    db = console_server.db
    tid, user = _tenant(db)
    billing.top_up(db, tid, billing.to_micros("10"), actor="test", reference="pay-1")
    billing.top_up(
        db, tid, billing.to_micros("10"), actor="test", reference='=HYPERLINK("x")', memo="+cmd|' /C calc'!A0"
    )
    billing.set_settings(db, tid, actor="test", low_balance=billing.to_micros("50"))
    billing.set_price(db, tid, "mobile", "notification", billing.to_micros("0.0321"), actor="test")
    c = Client(console_server, user)
    r = c.post_form(
        "/console/compose",
        {
            "mode": "adhoc",
            "kind": "notification",
            "signature": SIG,
            "content": "您的订单已发货。",
            "numbers": "13800138001\n13800138002",
            "action": "submit",
        },
    )
    assert r.status_code == 302, r.text
    bid = int(r.headers["location"].rsplit("/", 1)[1])
    wait_for(lambda: c.get(f"/console/batches/{bid}/progress").json()["final"], f"batch {bid}")
    wait_for(lambda: billing.get_balance(db, tid)["held"] == "0.0000", "the batch's hold settled")
    yield {"tid": tid, "client": c, "batch": bid, "db": db}
    c.close()


def _kinds(html: str) -> list[str]:
    return re.findall(r'<tr data-kind="([a-z]+)" data-id="\d+">', html)


def test_balance_page_shows_billing_figures_prices_and_the_low_warning(prepaid) -> None:
    c, db, tid = prepaid["client"], prepaid["db"], prepaid["tid"]
    b = billing.get_balance(db, tid)
    assert b["prepaid"] and b["available"] != "20.0000"  # the batch was charged
    r = c.get("/console/balance")
    assert r.status_code == 200
    assert f'id="b-available" data-value="{b["available"]}"' in r.text
    assert f'id="b-held" data-value="{b["held"]}"' in r.text
    assert f'id="b-balance" data-value="{b["balance"]}"' in r.text
    # under the 50.00 threshold billing alerts at: the warning, and the navigation's figure is marked
    assert 'id="low-balance"' in r.text and "50.0000" in r.text
    assert re.search(r'<span class="small warn" id="nav-balance-figure">[\d,.]+</span>', r.text)
    # the tenant's own price beats the policy's for (mobile, notification) only
    prices = billing.list_prices(db, tid, {c: 0 for c in billing.CARRIERS})["prices"]
    row = r.text.split('data-carrier="mobile"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num" data-kind="notification">0.0321</td>' in row
    assert prices["notification"]["mobile"] == "0.0321"
    for kind in billing.KINDS:
        assert f'data-kind="{kind}"' in row


def test_no_warning_above_the_threshold_and_not_prepaid_says_so(console_server) -> None:
    db = console_server.db
    tid, user = _tenant(db)
    c = Client(console_server, user)
    try:
        r = c.get("/console/balance")
        assert r.status_code == 200 and 'id="not-prepaid"' in r.text and 'id="nav-balance-figure"' not in r.text
        billing.top_up(db, tid, billing.to_micros("80"), actor="test")
        billing.set_settings(db, tid, actor="test", low_balance=billing.to_micros("50"))
        r = c.get("/console/balance")
        assert 'id="low-balance"' not in r.text and 'data-value="80.0000"' in r.text
        assert '<span class="small" id="nav-balance-figure">80.0000</span>' in c.get("/console/batches").text
    finally:
        c.close()


def test_statement_lists_entries_filters_by_type_and_date_and_pages(prepaid) -> None:
    c, bid = prepaid["client"], prepaid["batch"]
    r = c.get("/console/statement")
    assert r.status_code == 200
    kinds = _kinds(r.text)
    assert kinds[:3] == ["topup", "topup", "hold"] and "charge" in kinds
    assert f'href="/console/batches/{bid}">批次 #{bid}</a>' in r.text  # batch #N
    assert "<code>pay-1</code>" in r.text
    # the time is the tenant's (Asia/Shanghai), not UTC
    assert f"{now_local():%Y-%m-%d}" in r.text
    assert _kinds(c.get("/console/statement", params={"kind": "topup"}).text) == ["topup", "topup"]
    today, tomorrow = f"{now_local():%Y-%m-%d}", f"{now_local(timedelta(days=1)):%Y-%m-%d}"
    assert _kinds(c.get("/console/statement", params={"since": today, "until": today}).text) == kinds
    assert _kinds(c.get("/console/statement", params={"since": tomorrow}).text) == []
    # the cursor: after the first top-up's id, the rest
    first = int(re.search(r'data-kind="topup" data-id="(\d+)"', r.text).group(1))
    assert _kinds(c.get("/console/statement", params={"after": str(first)}).text) == kinds[1:]


def test_statement_pages_on_with_a_cursor_that_keeps_the_filter(console_server) -> None:
    db = console_server.db
    tid, user = _tenant(db)
    for i in range(53):  # more than a page (50)
        billing.top_up(db, tid, billing.to_micros("1"), actor="test", reference=f"p{i}")
    billing.adjust(db, tid, billing.to_micros("-1", signed=True), actor="test", memo="correction")
    c = Client(console_server, user)
    try:
        r = c.get("/console/statement", params={"kind": "topup"})
        assert _kinds(r.text) == ["topup"] * 50
        nxt = re.search(r'href="(/console/statement\?[^"]+)" id="s-next"', r.text).group(1).replace("&amp;", "&")
        assert "kind=topup" in nxt
        r2 = c.get(nxt)
        assert _kinds(r2.text) == ["topup"] * 3 and 'id="s-next"' not in r2.text
        assert _kinds(c.get("/console/statement", params={"kind": "adjustment"}).text) == ["adjustment"]
        rows = list(csv.reader(io.StringIO(c.get("/console/statement.csv").text.lstrip("\ufeff"))))
        assert len(rows) == 1 + 54 and rows[-1][2] == "adjustment" and rows[-1][4] == "-1.0000"
    finally:
        c.close()


def test_statement_csv_is_the_filtered_ledger_with_formulas_neutralized(prepaid) -> None:
    c, db, tid = prepaid["client"], prepaid["db"], prepaid["tid"]
    r = c.get("/console/statement.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="statement.csv"' in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    head, body = rows[0], rows[1:]
    assert head[:4] == ["id", "time", "type", "amount (CNY)"]
    ledger = billing.statement(db, tid, limit=1000)["items"]
    assert [int(x[0]) for x in body] == [e["id"] for e in ledger]
    assert [x[5] for x in body] == [e["balance_after"] for e in ledger]
    assert body[0][1].endswith("+08:00")  # the tenant's zone
    formula = next(x for x in body if "HYPERLINK" in x[10])
    assert formula[10] == '\'=HYPERLINK("x")' and formula[11].startswith("'+cmd")
    assert body[2][8] == f"batch:{prepaid['batch']}"
    only = list(csv.reader(io.StringIO(c.get("/console/statement.csv", params={"kind": "hold"}).text)))
    assert [x[2] for x in only[1:]] == ["hold"]


@pytest.mark.parametrize(
    ("params", "where", "says"),
    [
        ({"since": "2026-13-01"}, "query since", "不是日期"),  # not a date
        ({"since": "2026-11-20", "until": "2026-11-10"}, "query until", "早于开始日期"),  # before the start
        ({"kind": "payment"}, "query kind", "类型必须是以下之一"),  # type must be one of
        ({"after": "x"}, "query after", "翻页标记"),  # cursor
    ],
)
def test_bad_statement_filters_answer_400_with_where(prepaid, params, where, says) -> None:
    r = prepaid["client"].get("/console/statement", params=params)
    assert r.status_code == 400
    assert f'data-where="{where}"' in r.text and says in r.text
    if "after" not in params:  # the download has no cursor: it is every page
        assert prepaid["client"].get("/console/statement.csv", params=params).status_code == 400


def test_another_tenant_sees_only_its_own(prepaid, bob) -> None:
    r = bob.get("/console/statement")
    assert r.status_code == 200 and "pay-1" not in r.text and _kinds(r.text) == []
    assert "pay-1" not in bob.get("/console/statement.csv").text
    assert 'id="not-prepaid"' in bob.get("/console/balance").text


def test_signed_out_is_sent_to_log_in(console_server) -> None:
    c = Client(console_server)
    try:
        for path in ("/console/balance", "/console/statement", "/console/statement.csv"):
            r = c.get(path)
            assert r.status_code in (302, 303) and "/console/login" in r.headers["location"]
    finally:
        c.close()
