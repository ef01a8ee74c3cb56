"""The batch routes through the running app (litestar TestClient), on both backends."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient

from smsguard import batches
from smsguard.engine import Engine


@pytest.fixture(scope="module")
def app(backend, migrated_db, batch_engine: Engine) -> Iterator[TestClient]:
    from smsguard.api import create_app

    with TestClient(create_app(batch_engine, settings=backend.settings(rate_limit=1_000_000))) as c:
        yield c


@pytest.fixture
def key(backend, app: TestClient, unique_name: Callable[[str], str]) -> dict[str, str]:
    from smsguard.storage import create_key, create_tenant

    t = create_tenant(backend.db, unique_name("api"))
    k, _ = create_key(backend.db, t.name, admin=True)
    return {"Authorization": f"Bearer {k}"}


def test_batch_flow_over_http(app: TestClient, key: dict[str, str], ctx) -> None:
    r = app.post(
        "/v1/templates",
        headers=key,
        json={"name": "ship", "kind": "notification", "signature": "示例商城", "body": "${姓名}您好，您的订单已发货。"},
    )
    assert r.status_code == 201, r.text
    tpl = r.json()
    assert tpl["status"] == "approved" and tpl["variables"] == ["姓名"]
    csv_gbk = "手机号码,姓名\r\n13812345678,张三\r\n13812345678,张三\r\n1381234,李四\r\n13912345678,王五\r\n".encode(
        "gbk"
    )
    r = app.post("/v1/contact-lists?name=vip", headers={**key, "content-type": "text/csv"}, content=csv_gbk)
    assert r.status_code == 201, r.text
    lst = r.json()
    assert (lst["encoding"], lst["valid"], lst["invalid"], lst["duplicates"]) == ("gb18030", 2, 1, 1)
    r = app.get(f"/v1/contact-lists/{lst['id']}/rejects.csv", headers=key)
    assert r.status_code == 200 and r.text.splitlines()[1].startswith("3,duplicate,")
    r = app.post("/v1/batches", headers=key, json={"template_id": tpl["id"], "list_id": lst["id"]})
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["state"] == "scheduled" and b["estimate"] == "0.0900"
    # an MO reply opts one number out before the release
    r = app.post("/v1/inbound", headers=key, json={"phone": "13912345678", "text": "退订", "signature": "示例商城"})
    assert r.status_code == 200 and r.json() == {"action": "opt_out", "scope": "signature", "phone": "139****5678"}
    batches.ReleaseWorker(ctx, poll=0.01).run(until_idle=True)
    r = app.get(f"/v1/batches/{b['id']}", headers=key)
    assert r.json()["state"] == "sending" and r.json()["counts"] == {"opted_out": 1, "submitted": 1}
    assert r.json()["waiting_for"] == "channel"  # no gateway consumes the outbox here
    r = app.get(f"/v1/batches/{b['id']}/report.csv", headers=key)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0].startswith("seq,phone,carrier,status") and "138****5678" in r.text and "13812345678" not in r.text
    r = app.get(f"/v1/batches/{b['id']}/recipients", headers=key, params={"status": "opted_out"})
    assert [x["phone"] for x in r.json()["recipients"]] == ["139****5678"]
    assert app.post(f"/v1/batches/{b['id']}/cancel", headers=key).status_code == 409


def test_budget_and_errors_over_http(app: TestClient, key: dict[str, str]) -> None:
    assert app.put("/v1/budget", headers=key, json={"limit": 0.01}).json()["limit"] == "0.0100"
    r = app.post("/v1/batches", headers=key, json={"content": "【示例商城】您的快递已到。", "numbers": ["13812345678"]})
    assert r.status_code == 402 and r.json()["code"] == "budget.exceeded"
    r = app.post("/v1/batches", headers=key, json={"template_id": 999999, "list_id": 1})
    assert r.status_code == 404
    r = app.post("/v1/batches", headers=key, json={"content": "hi", "numbers": ["1"], "bogus": 1})
    assert r.status_code == 400
    r = app.post("/v1/optouts/status", headers=key, json={"phone": "not a number"})
    assert r.status_code == 400 and r.json()["code"] == "phone.invalid"
    r = app.post("/v1/complaints", headers=key, json={"phone": "13812345678", "text": "骚扰", "id": "c-1"})
    assert r.status_code == 201
    r2 = app.post("/v1/complaints", headers=key, json={"phone": "13812345678", "text": "骚扰", "id": "c-1"})
    assert r2.json()["repeat"] is True and r2.json()["id"] == r.json()["id"]
    assert app.post("/v1/optouts/status", headers=key, json={"phone": "13812345678"}).json()["tenant"] is True


BAD_CSVS = {
    "cr_only": b"phone,name\r13812340001,a\r13812340002,b\r",
    "random_bytes": bytes(random.Random(6).randbytes(100_000)),
    "field_over_131072": b"phone,name\n13812340001," + b"x" * 140_000 + b"\n13812340002,b\n",
    "unterminated_quote": b'phone,name\n13812340001,"open\n13812340002,b\n',
    "line_of_5mb": b"phone,name\n13812340001," + b"y" * 5_000_000 + b"\n",
}


@pytest.mark.parametrize("name", sorted(BAD_CSVS))
def test_bad_csv_uploads_never_500(app: TestClient, key: dict[str, str], name: str) -> None:
    """Issue 15 failure 6: these were 500s (_csv.Error); now a list with per-line rejects, or a clear 400."""
    r = app.post(f"/v1/contact-lists?name={name}", headers={**key, "content-type": "text/csv"},
                 content=BAD_CSVS[name])
    assert r.status_code in (201, 400), r.text
    body = r.json()
    if r.status_code == 400:
        assert body["code"].startswith("contacts.") and body["message"] and body["where"].startswith("line ")
    else:
        assert body["total"] == body["valid"] + body["invalid"] + body["duplicates"]
        assert all(rej["code"] and rej["line"] >= 2 for rej in body["rejected"])


def test_unicode_spellings_are_one_number_everywhere(app: TestClient, key: dict[str, str]) -> None:
    """Issue 15 failure 3: ``1380013８000`` bypassed the opt-out of 13800138000 and de-duplication."""
    assert app.post("/v1/optouts", headers=key, json={"phone": "13800138000"}).status_code == 200
    for spelling in ("1380013８000", "١٣٨٠٠١٣٨٠٠٠", "+86 १३८ ००१३ ८०००"):
        r = app.post("/v1/optouts/status", headers=key, json={"phone": spelling})
        assert r.status_code == 200 and r.json()["tenant"] is True and r.json()["phone"] == "138****8000", r.text
    r = app.post("/v1/batches", headers=key, json={"content": "【示例商城】您的快递已到驿站，请及时取件。",
                                                   "numbers": ["13900139000", "1390013９000", "١٣٩٠٠١٣٩٠٠٠"]})
    assert r.status_code == 201, r.text
    assert r.json()["counts"] == {"invalid": 2, "queued": 1}  # two duplicates of the first, not three numbers
    bad = app.post("/v1/optouts", headers=key, json={"phone": "138八0013800"})
    assert bad.status_code == 400
    assert bad.json() == {"code": "phone.invalid", "message": "character 4: '八' (U+516B) is not a digit",
                          "where": "$.phone"}
