"""The prepaid balance over HTTP (litestar TestClient), on both backends: balance, statement, prices, admin
top-ups and settings, the 402 with its amounts, roles and tenant isolation."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient

from smsguard.engine import Engine

TEXT = "【示例商城】您的快递已到驿站，请及时取件。"


@pytest.fixture(scope="module")
def app(backend, migrated_db, batch_engine: Engine) -> Iterator[TestClient]:
    from smsguard.api import create_app

    with TestClient(create_app(batch_engine, settings=backend.settings(rate_limit=1_000_000))) as c:
        yield c


@pytest.fixture
def keys(backend, app: TestClient, unique_name: Callable[[str], str]) -> dict[str, dict[str, str]]:
    from smsguard.storage import create_key, create_tenant

    t = create_tenant(backend.db, unique_name("bill"))
    out = {}
    for role in ("admin", "client", "auditor"):
        k, _ = create_key(backend.db, t.name, role=role)
        out[role] = {"Authorization": f"Bearer {k}"}
    return out


def test_balance_topup_hold_and_statement(app: TestClient, keys) -> None:
    admin, client = keys["admin"], keys["client"]
    r = app.get("/v1/balance", headers=client)
    assert r.status_code == 200 and r.json()["prepaid"] is False  # not prepaid until the first top-up
    r = app.post("/v1/balance/topups", json={"amount": 0.1, "reference": "pay-1", "memo": "test"}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["entry"]["balance_change"] == "+0.1000" and r.json()["available"] == "0.1000"
    again = app.post("/v1/balance/topups", json={"amount": 0.1, "reference": "pay-1"}, headers=admin)
    assert again.status_code == 201 and again.json()["replayed"] is True and again.json()["balance"] == "0.1000"
    other = app.post("/v1/balance/topups", json={"amount": 5, "reference": "pay-1"}, headers=admin)
    assert other.status_code == 409 and other.json()["code"] == "billing.reference"

    r = app.post("/v1/batches", json={"content": TEXT, "numbers": ["13900000001", "13900000002"]}, headers=client)
    assert r.status_code == 201, r.text
    r = app.get("/v1/balance", headers=client)
    assert (r.json()["balance"], r.json()["held"], r.json()["available"]) == ("0.1000", "0.0900", "0.0100")

    # more than is available: 402 with the amounts, the batch back in draft
    r = app.post("/v1/batches", json={"content": TEXT, "numbers": ["13900000003"]}, headers=client)
    assert r.status_code == 402 and r.json()["code"] == "billing.insufficient_balance"
    assert "0.0450" in r.json()["message"] and "0.0100" in r.json()["message"] and r.json()["where"] == "balance"

    st = app.get("/v1/ledger", headers=client).json()
    assert [(e["kind"], e["amount"]) for e in st["items"]] == [("topup", "0.1000"), ("hold", "0.0900")]
    assert st["items"][1]["hold"].startswith("batch:") and st["next_after"] is None
    page = app.get("/v1/ledger", params={"limit": 1}, headers=client).json()
    assert len(page["items"]) == 1 and page["next_after"] == st["items"][0]["id"]
    later = app.get("/v1/ledger", params={"since": "2100-01-01T00:00:00+08:00"}, headers=client).json()
    assert later["items"] == []
    naive = app.get("/v1/ledger", params={"since": "2026-01-01T00:00:00"}, headers=client)
    assert naive.status_code == 400 and naive.json()["code"] == "billing.time"
    for unix in ("0.5", "1764547200"):  # a number is no ISO 8601 date-time, though msgspec reads it as one
        r = app.get("/v1/ledger", params={"until": unix}, headers=client)
        assert r.status_code == 400 and r.json()["code"] == "billing.time" and r.json()["where"] == "query until"
    assert app.get("/v1/ledger", headers=keys["auditor"]).status_code == 200  # auditors read


def test_admin_only_writes_and_settings(app: TestClient, keys) -> None:
    for role in ("client", "auditor"):
        r = app.post("/v1/balance/topups", json={"amount": 1}, headers=keys[role])
        assert r.status_code == 403, (role, r.text)
        assert app.put("/v1/balance/settings", json={"charge_on": "delivery"}, headers=keys[role]).status_code == 403
    for bad in ({"amount": 0}, {"amount": -1}, {"amount": 1e13}, {"amount": 1, "extra": 1}, {"amount": "x"}):
        r = app.post("/v1/balance/topups", json=bad, headers=keys["admin"])
        assert r.status_code == 400 and {"code", "message", "where"} <= set(r.json()), (bad, r.text)
    r = app.post("/v1/balance/topups", json={"amount": 1, "memo": "a\x00b"}, headers=keys["admin"])
    assert r.status_code == 400 and r.json()["code"] == "input.nul"
    r = app.put("/v1/balance/settings", json={"low_balance": 10, "charge_on": "delivery"}, headers=keys["admin"])
    assert r.status_code == 200 and (r.json()["low_balance"], r.json()["charge_on"]) == ("10.0000", "delivery")
    r = app.put("/v1/balance/settings", json={"low_balance": 0}, headers=keys["admin"])
    assert r.json()["low_balance"] is None and r.json()["charge_on"] == "delivery"
    assert app.put("/v1/balance/settings", json={"charge_on": "never"}, headers=keys["admin"]).status_code == 400
    prices = app.get("/v1/prices", headers=keys["client"]).json()
    assert prices["prices"]["notification"]["mobile"] == "0.0450" and prices["unit"] == "segment"


def test_another_tenants_ledger_is_not_seen(app: TestClient, keys, backend, unique_name) -> None:
    from smsguard.storage import create_key, create_tenant

    app.post("/v1/balance/topups", json={"amount": 3}, headers=keys["admin"])
    t = create_tenant(backend.db, unique_name("bill"))
    k, _ = create_key(backend.db, t.name)
    other = {"Authorization": f"Bearer {k}"}
    assert app.get("/v1/balance", headers=other).json()["prepaid"] is False
    assert app.get("/v1/ledger", headers=other).json()["items"] == []
