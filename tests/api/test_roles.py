"""Roles on every route from one table (api/_roles.py): the OpenAPI document walked, every operation tried
with every role, allowed or 403; and issue 15's auditor writes, reproduced."""

from __future__ import annotations

import re
import uuid

import pytest
from litestar.testing import TestClient

from smsguard.api._roles import ALL_ROLES, PUBLIC, ROUTE_ROLES, VENDOR_SIGNED, roles_for

_METHODS = ("get", "post", "put", "patch", "delete")

# A body per operation that fits its schema, so an allowed role gets past validation (the role check runs
# first, so a refused role is 403 whatever the body).
_BODIES = {
    ("POST", "/v1/screen"): {"text": "【示例商城】您的订单已发货"},
    ("POST", "/v1/screen/batch"): {"messages": [{"text": "【示例商城】您的订单已发货"}]},
    ("POST", "/v1/admin/reload"): {"what": ["policy"]},
    ("POST", "/v1/templates"): {"name": "t", "kind": "notification", "signature": "示例商城", "body": "您好"},
    ("POST", "/v1/batches"): {"content": "【示例商城】您的订单已发货", "numbers": ["13812345678"], "draft": True},
    ("POST", "/v1/batches/{batch_id}/submit"): {},
    ("POST", "/v1/inbound"): {"phone": "13812345678", "text": "你好"},
    ("POST", "/v1/optouts"): {"phone": "13812345678"},
    ("POST", "/v1/optouts/remove"): {"phone": "13812345678"},
    ("POST", "/v1/optouts/status"): {"phone": "13812345678"},
    ("POST", "/v1/complaints"): {"phone": "13812345678"},
    ("PUT", "/v1/budget"): {"limit": None},
    # TEST-NET addresses: rules on them touch no other test's traffic
    ("POST", "/v1/admin/pumping/allow"): {"scope": "ip", "value": "192.0.2.77", "seconds": 60},
    ("POST", "/v1/admin/pumping/block"): {"scope": "ip", "value": "192.0.2.78", "seconds": 60},
    ("POST", "/v1/admin/pumping/lift"): {"scope": "ip", "value": "192.0.2.78"},
    ("POST", "/v1/messages"): {"to": "13812345678", "text": "【示例商城】您的订单已发货"},
    ("POST", "/v1/verify"): {"to": "13812345678", "signature": "示例商城"},
    ("POST", "/v1/verify/check"): {"to": "13812345678", "code": "123456"},
    ("PUT", "/v1/verify/settings"): {"length": 6},
}


def _key(backend, tenant: str, role: str) -> dict[str, str]:
    from smsguard.storage import create_key

    key, _ = create_key(backend.db, tenant, role=role)
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keys(backend, client: TestClient) -> dict[str, dict[str, str]]:
    from smsguard.storage import create_tenant

    tenant = create_tenant(backend.db, f"roles-{uuid.uuid4().hex[:8]}")
    return {role: _key(backend, tenant.name, role) for role in ALL_ROLES}


def _operations(client: TestClient) -> list[tuple[str, str]]:
    doc = client.get("/schema/openapi.json").json()
    return [(m.upper(), path) for path, item in doc["paths"].items() for m in _METHODS if m in item]


def test_table_and_document_agree(client: TestClient) -> None:
    """Every operation the API documents has a row (or is public, or vendor-signed), and no row names a route
    that is gone."""
    ops = set(_operations(client))
    assert ops - PUBLIC - VENDOR_SIGNED - set(ROUTE_ROLES) == set()
    assert ops >= VENDOR_SIGNED and not VENDOR_SIGNED & set(ROUTE_ROLES)
    assert set(ROUTE_ROLES) - ops == set()


def _request(client: TestClient, method: str, path: str, headers: dict[str, str]):
    url = re.sub(r"\{[^}]+\}", "1", path)
    body = _BODIES.get((method, path))
    if path == "/v1/contact-lists":
        return client.post(url, headers={**headers, "content-type": "text/csv"}, content=b"phone\n13812345678\n")
    return client.request(method, url, headers=headers, json=body if body is not None else None)


def test_every_operation_with_every_role(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    checked = 0
    for method, path in _operations(client):
        if (method, path) in PUBLIC:
            assert _request(client, method, path, {}).status_code in (200, 503)
            continue
        if (method, path) in VENDOR_SIGNED:  # only a vendor signature opens these: no API key of any role does
            for headers in [{}, *keys.values()]:
                r = client.post(path, headers=headers, content=b"{}")
                body = r.json()
                refused = body.get("Code") == "IncompleteSignature" or body.get("Response", {}).get(
                    "Error", {}).get("Code", "").startswith("AuthFailure.")
                assert r.status_code in (200, 400) and refused, (path, r.status_code, r.text)
            continue
        assert _request(client, method, path, {}).status_code == 401, (method, path)  # no key
        for role, headers in keys.items():
            r = _request(client, method, path, headers)
            if role in roles_for(method, path):
                assert r.status_code not in (401, 403, 500), (method, path, role, r.text)
            else:
                assert r.status_code == 403, (method, path, role, r.status_code, r.text)
                body = r.json()
                assert body["code"] == "auth.forbidden" and body["where"] == "header Authorization"
                assert role in body["message"] and path in body["message"]
            checked += 1
    assert checked >= 4 * len(ROUTE_ROLES)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/batches", {"content": "【示例商城】您的订单已发货", "numbers": ["13812345678"]}),
        ("/v1/templates", {"name": "t", "kind": "notification", "signature": "示例商城", "body": "您好"}),
        ("/v1/optouts/remove", {"phone": "13812345678"}),
        ("/v1/inbound", {"phone": "13812345678", "text": "退订"}),
    ],
)
@pytest.mark.parametrize("role", ["auditor", "auditor_full"])
def test_auditor_keys_cannot_write(client: TestClient, keys: dict[str, dict[str, str]], role: str, path: str,
                                   body: dict) -> None:
    """Issue 15 failure 4: 201 on POST /v1/batches and /v1/templates, 200 on /v1/optouts/remove and /v1/inbound."""
    r = client.post(path, headers=keys[role], json=body)
    assert r.status_code == 403 and r.json()["code"] == "auth.forbidden", r.text


def test_an_opt_out_stays_when_an_auditor_tries_to_lift_it(client: TestClient, keys) -> None:
    phone = {"phone": "13812340077"}
    assert client.post("/v1/optouts", headers=keys["client"], json=phone).status_code == 200
    assert client.post("/v1/optouts/remove", headers=keys["auditor"], json=phone).status_code == 403
    status = client.post("/v1/optouts/status", headers=keys["auditor"], json=phone)
    assert status.status_code == 200 and status.json()["tenant"] is True
