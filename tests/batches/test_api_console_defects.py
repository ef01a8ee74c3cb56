"""Issue 19 over HTTP (litestar TestClient, both backends): ``POST /v1/batches/{id}/cancel`` cancels a batch
that quiet hours hold (it answered 409), and ``GET /v1/batches/{id}`` carries the hold and the reviewer's
decision and reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient
from test_console_defects import _night, _release

from smsguard.engine import Engine
from smsguard.review import Decision
from smsguard.review._items import decision_handler


@pytest.fixture(scope="module")
def app(backend, migrated_db, batch_engine: Engine) -> Iterator[TestClient]:
    from smsguard.api import create_app

    with TestClient(create_app(batch_engine, settings=backend.settings(rate_limit=1_000_000))) as c:
        yield c


@pytest.fixture
def key(backend, app: TestClient, unique_name: Callable[[str], str]) -> tuple[dict[str, str], int]:
    from smsguard.storage import create_key, create_tenant

    t = create_tenant(backend.db, unique_name("api"))
    k, _ = create_key(backend.db, t.name)
    return {"Authorization": f"Bearer {k}"}, t.id


def test_deferred_batch_is_cancelled_over_http(app: TestClient, key, ctx) -> None:
    headers, _ = key
    r = app.post("/v1/batches", headers=headers, json={
        "content": "【示例商城】新品上市，全场8折，回T退订", "numbers": ["13812345678", "13912345678"],
        "kind": "marketing"})
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    _release(_night(ctx), lambda: datetime.now(UTC) + timedelta(seconds=1))
    b = app.get(f"/v1/batches/{bid}", headers=headers).json()
    assert b["state"] == "releasing" and b["counts"] == {"deferred": 2}
    assert b["hold"]["reason"] == "quiet_hours" and b["cancellable"] is True
    r = app.post(f"/v1/batches/{bid}/cancel", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled" and r.json()["counts"] == {"cancelled": 2}
    assert app.post(f"/v1/batches/{bid}/cancel", headers=headers).status_code == 409  # nothing left to cancel


def test_reviewer_reason_in_the_batch_over_http(app: TestClient, key, ctx) -> None:
    headers, tenant = key
    r = app.post("/v1/batches", headers=headers, json={"content": "【示例商城】低息贷款，详询门店。",
                                                        "numbers": ["13812345678"]})
    b = r.json()
    assert b["state"] == "review"
    with ctx.db.begin() as conn:
        decision_handler("batch_content")(conn, Decision(
            item_id=0, source="batch_content", source_ref=f"{b['id']}:{b['contents'][0]['content_hash']}",
            tenant_id=tenant, approved=False, reason="贷款广告未报备", deciders=["rita"], category="loan"))
    got = app.get(f"/v1/batches/{b['id']}", headers=headers).json()
    assert got["state"] == "cancelled" and got["reason"] == "rejected in review: 贷款广告未报备"
    assert got["review"] == [{"content_id": 1, "decision": "rejected", "reason": "贷款广告未报备", "category": "loan"}]
