"""The OpenAPI document says what the non-JSON routes really send: for each such route, the media types of
its 200 response equal the Content-Type headers of real responses (through litestar's TestClient)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from litestar.testing import TestClient

JSONL = {"format": "jsonl"}
CSV = {"format": "csv"}


def _keys(backend, unique_name: Callable[[str], str], *roles: str) -> list[dict[str, str]]:
    """Keys of one new tenant, one per role."""
    from smsguard.storage import create_key, create_tenant

    tenant = create_tenant(backend.db, unique_name("oa"), rate_limit=1_000_000)
    return [{"Authorization": f"Bearer {create_key(backend.db, tenant.name, role=role)[0]}"} for role in roles]


def _content_type(client: TestClient, path: str, headers: dict[str, str], params: dict[str, str] | None = None) -> str:
    r = client.get(path, headers=headers, params=params)
    assert r.status_code == 200, (path, params, r.text)
    return r.headers["content-type"]


@pytest.fixture
def sent(backend, client: TestClient, unique_name: Callable[[str], str]) -> dict[str, set[str]]:
    """path → the Content-Types real 200 answers of that route carry (every format it has)."""
    auditor, admin = _keys(backend, unique_name, "auditor", "admin")
    r = client.post("/v1/contact-lists?name=oa", headers={**admin, "content-type": "text/csv"},
                    content="手机号码\r\n13812345678\r\n13812345678\r\n1381234\r\n".encode())
    assert r.status_code == 201, r.text
    list_id = r.json()["id"]
    r = client.post("/v1/batches", headers=admin,
                    json={"content": "【示例商城】您的快递已到。", "numbers": ["13812345678"], "draft": True})
    assert r.status_code == 201, r.text
    batch_id = r.json()["id"]
    trail = {"batch": str(batch_id)}
    files = [("documents", (f"d{i}", magic + b"\x00" * 16, "application/octet-stream"))
             for i, magic in enumerate((b"%PDF-1.4", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0"))]
    r = client.post("/v1/signatures", headers=admin, data={"name": "签" + unique_name("x")[2:10], "type": "app",
                                                           "use": "self"}, files=files)
    assert r.status_code == 201, r.text
    sig = r.json()
    docs = "/v1/signatures/{signature_id}/documents/{document_id}"
    return {
        docs: {_content_type(client, f"/v1/signatures/{sig['id']}/documents/{d['id']}", admin)
               for d in sig["documents"]},
        "/v1/audit/events": {
            _content_type(client, "/v1/audit/events", auditor),  # the default format
            _content_type(client, "/v1/audit/events", auditor, JSONL),
            _content_type(client, "/v1/audit/events", auditor, CSV),
        },
        "/v1/audit/trail": {
            _content_type(client, "/v1/audit/trail", auditor, trail),
            _content_type(client, "/v1/audit/trail", auditor, {**trail, **JSONL}),
            _content_type(client, "/v1/audit/trail", auditor, {**trail, **CSV}),
        },
        "/v1/contact-lists/{list_id}/rejects.csv": {
            _content_type(client, f"/v1/contact-lists/{list_id}/rejects.csv", admin)
        },
        "/v1/contact-lists/{list_id}/export.csv": {
            _content_type(client, f"/v1/contact-lists/{list_id}/export.csv", admin),
            _content_type(client, f"/v1/contact-lists/{list_id}/export.csv", auditor),  # masked: the same type
        },
        "/v1/batches/{batch_id}/report.csv": {_content_type(client, f"/v1/batches/{batch_id}/report.csv", admin)},
        "/metrics": {_content_type(client, "/metrics", {})},
    }


def test_non_json_responses_are_documented_as_sent(client: TestClient, sent: dict[str, set[str]]) -> None:
    spec = client.get("/schema/openapi.json").json()
    documented = {path: set(spec["paths"][path]["get"]["responses"]["200"]["content"]) for path in sent}
    assert documented == sent
    # the audit exports really send two media types: JSON Lines (default) and CSV
    assert sent["/v1/audit/events"] == {"application/x-ndjson", "text/csv; charset=utf-8"}
    for path in sent:
        content = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert all(media["schema"] == {"type": "string"} for media in content.values()), path


def test_every_other_success_is_json(client: TestClient, sent: dict[str, set[str]]) -> None:
    """No other documented success answer is a non-JSON body, so the test above covers them all."""
    spec = client.get("/schema/openapi.json").json()
    others = {
        f"{method.upper()} {path}": set(response.get("content") or {})
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and path not in sent
        for status, response in operation.get("responses", {}).items()
        if status.startswith("2")
    }
    assert others and all(media <= {"application/json"} for media in others.values()), others


def test_downloads_document_content_disposition(client: TestClient, backend, unique_name) -> None:
    (auditor,) = _keys(backend, unique_name, "auditor")
    spec = client.get("/schema/openapi.json").json()
    for path, params in (("/v1/audit/events", CSV), ("/v1/audit/trail", {"batch": "1", **JSONL})):
        r = client.get(path, headers=auditor, params=params)
        assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment; filename=")
        documented = spec["paths"][path]["get"]["responses"]["200"]["headers"]
        assert documented["Content-Disposition"]["required"] is True


def _names_a_schema(schema: dict) -> bool:
    """A component (``$ref``), or a list or union of them: not a bare ``object`` the client must guess."""
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _names_a_schema(schema.get("items") or {})
    members = schema.get("oneOf") or schema.get("anyOf")
    return bool(members) and all(_names_a_schema(m) or m.get("type") == "null" for m in members)


def test_every_json_success_names_its_schema(client: TestClient) -> None:
    """Every JSON success answer is a typed struct in the document (issue 14: no `dict[str, Any]` handlers)."""
    spec = client.get("/schema/openapi.json").json()
    bare = sorted(
        f"{status} {method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and not path.startswith("/schema")
        for status, response in operation.get("responses", {}).items()
        if status.startswith("2") and "application/json" in (response.get("content") or {})
        and not _names_a_schema(response["content"]["application/json"].get("schema") or {})
    )
    assert bare == []
    # two structs of one name would be told apart by module ("_messages_Delivery"): a client sees that name
    assert [name for name in spec["components"]["schemas"] if name.startswith("_")] == []
