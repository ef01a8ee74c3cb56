"""Every operation of the OpenAPI document documents its request body and carries examples (issue 17, point 6).

The document is walked, so routes added later are held to the same rules: a POST / PUT / PATCH has a request
body with a schema in every media type (``POST /v1/contact-lists`` had none, so ``curl -F`` users got a
misleading error), every operation has a 2xx response example and, when it takes a body, a request example
in each of the body's media types; every example fits its schema; and the request examples of the routes
of the API-key routes without path parameters are sent to the app and must succeed."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
from litestar.testing import TestClient

_METHODS = ("get", "post", "put", "patch", "delete")
_WRITES = ("post", "put", "patch")

BINARY = {"application/pdf": "%PDF-", "image/png": "\x89PNG\r\n\x1a\n", "image/jpeg": "\xff\xd8\xff"}
"""Media types whose example is a file's bytes (as text), and the magic bytes it must start with."""

NOT_REPLAYED: dict[tuple[str, str], str] = {
    ("POST", "/v1/signatures"): "its documents are binary files; tests/api/test_signatures.py applies with real PDFs",
    ("POST", "/v1/contact-lists/merge"): "its list ids are the example tenant's; tests/api/test_list_tools_api.py "
    "merges real ones",
    ("POST", "/v1/verify/check"): "the code is random per send; tests/messages/test_verify_api.py checks real ones",
}
"""Request examples that cannot succeed when replayed as they are, and why."""

NO_BODY: dict[tuple[str, str], str] = {
    ("POST", "/v1/batches/{batch_id}/cancel"): "cancelling needs nothing but the batch, named in the path",
}
"""Writing operations that genuinely take no request body, and why."""


@pytest.fixture(scope="module")
def doc(client: TestClient) -> dict[str, Any]:
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = [(m.upper(), path, op) for path, item in doc["paths"].items() for m, op in item.items() if m in _METHODS]
    assert len(ops) >= 29  # the walk found the document's operations
    return ops


def _success(op: dict[str, Any]) -> dict[str, Any]:
    [status] = sorted(s for s in op["responses"] if s.startswith("2"))[:1]
    return op["responses"][status]


def _fits(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    """``value`` validates against ``schema`` (JSON Schema 2020-12, ``$ref``s into the document's components)."""
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "components": doc["components"]}
    errors = [f"{e.instance_path}: {e.message}" for e in jsonschema_rs.validator_for(root).iter_errors(value)]
    assert not errors, (where, errors[:5])


def test_every_writing_operation_documents_its_body(doc: dict[str, Any]) -> None:
    missing = []
    for method, path, op in _operations(doc):
        if method.lower() not in _WRITES or (method, path) in NO_BODY:
            continue
        content = (op.get("requestBody") or {}).get("content") or {}
        if not content or not all(media.get("schema") for media in content.values()):
            missing.append(f"{method} {path}")
    assert missing == [], f"no request body (schema) documented: {missing}; add one, or to NO_BODY with a reason"
    for method, path in NO_BODY:  # an exemption for a route that is gone or now has a body must go
        op = doc["paths"][path][method.lower()]
        assert "requestBody" not in op, (method, path)


def test_contact_lists_take_the_csv_raw_or_as_multipart_file(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/v1/contact-lists"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["text/csv"]["schema"]["type"] == "string"
    upload = body["content"]["multipart/form-data"]["schema"]
    assert upload["required"] == ["file"] and upload["properties"]["file"]["format"] == "binary"


def test_every_operation_has_examples(doc: dict[str, Any]) -> None:
    missing = []
    for method, path, op in _operations(doc):
        success = _success(op)
        for media_type, media in (success.get("content") or {}).items():
            if not media.get("examples"):
                missing.append(f"{method} {path}: response {media_type}")
        for media_type, media in ((op.get("requestBody") or {}).get("content") or {}).items():
            if not media.get("examples"):
                missing.append(f"{method} {path}: request {media_type}")
        if not any(m.get("examples") for m in (success.get("content") or {}).values()):
            missing.append(f"{method} {path}: no example at all")
    assert missing == [], f"add examples to api/_examples.py EXAMPLES: {missing}"


def test_examples_fit_their_schemas(doc: dict[str, Any]) -> None:
    checked = 0
    for method, path, op in _operations(doc):
        contents = [("response", _success(op).get("content") or {})]
        contents.append(("request", (op.get("requestBody") or {}).get("content") or {}))
        for side, content in contents:
            for media_type, media in content.items():
                for name, example in (media.get("examples") or {}).items():
                    where = f"{method} {path} {side} {media_type} {name}"
                    assert example.get("summary"), where
                    value = example["value"]
                    if media_type in ("application/json", "multipart/form-data", "application/x-www-form-urlencoded"):
                        _fits(doc, media["schema"], value, where)
                    elif media_type in BINARY:  # a file's bytes: its signature at least
                        assert isinstance(value, str) and value.startswith(BINARY[media_type]), where
                    else:  # CSV, JSON Lines, Prometheus text: a string body
                        assert isinstance(value, str) and value.endswith("\n"), where
                    checked += 1
    assert checked >= 40


def _send(client: TestClient, method: str, path: str, media_type: str, value: Any, headers: dict[str, str]):
    if media_type == "application/json":
        return client.request(method, path, headers=headers, json=value)
    if media_type == "multipart/form-data":
        files = {name: ("list.csv", text.encode("utf-8"), "text/csv") for name, text in value.items()}
        return client.request(method, path, headers=headers, files=files)
    return client.request(method, path, headers={**headers, "content-type": media_type},
                          content=value.encode("utf-8"))


def test_request_examples_are_taken(client: TestClient, doc: dict[str, Any], make_tenant) -> None:
    """What the examples show works: each is sent with an admin key of a new tenant and must succeed with an
    answer that fits the documented schema. Left out: operations with a path parameter (their ids would be the
    example tenant's) and those without API-key security (the vendor endpoints: their SDKs sign each request;
    tests/vendors drive them with the SDKs)."""
    key = make_tenant(admin=True, rate_limit=1_000_000)
    sent = 0
    for method, path, op in _operations(doc):
        if re.search(r"\{", path) or not op.get("security") or (method, path) in NOT_REPLAYED:
            continue
        for media_type, media in ((op.get("requestBody") or {}).get("content") or {}).items():
            for example in (media.get("examples") or {}).values():
                r = _send(client, method, path, media_type, example["value"], key.headers)
                where = f"{method} {path} {media_type}"
                assert 200 <= r.status_code < 300, (where, r.status_code, r.text[:500])
                schema = _success(op)["content"]["application/json"]["schema"]
                _fits(doc, schema, r.json(), where)
                sent += 1
    assert sent >= 12  # screen, batch, reload, templates, the CSV both ways, batches, MO, opt-outs, budget


def test_multipart_upload_imports_like_the_raw_body(client: TestClient, make_tenant) -> None:
    """``curl -F file=@list.csv`` (multipart, a file part), ``curl -F 'file=<list.csv'`` (a text part) and the raw
    body give the same list; a multipart without ``file`` or a body of another media type is a 400 saying how."""
    key = make_tenant()
    csv = "手机号码,name\r\n13812345678,张三\r\n13912345678,李四\r\n1381234,王五\r\n".encode()
    raw = client.post("/v1/contact-lists?name=raw", headers={**key.headers, "content-type": "text/csv"}, content=csv)
    as_file = client.post("/v1/contact-lists?name=file", headers=key.headers,
                          files={"file": ("list.csv", csv, "text/csv")})
    as_text = client.post("/v1/contact-lists?name=text", headers=key.headers, files={"file": (None, csv)})
    gbk = client.post("/v1/contact-lists?name=gbk", headers=key.headers,
                      files={"file": ("list.csv", csv.decode().encode("gbk"), "text/csv")})
    for r in (raw, as_file, as_text, gbk):
        assert r.status_code == 201, r.text
        got = r.json()
        assert (got["total"], got["valid"], got["invalid"], got["columns"]) == (3, 2, 1, ["name"]), got
    assert gbk.json()["encoding"] == "gb18030"  # GBK is read as its superset

    r = client.post("/v1/contact-lists", headers=key.headers, files={"upload": ("list.csv", csv, "text/csv")})
    assert r.status_code == 400 and r.json()["code"] == "input.multipart", r.text
    assert "`upload`" in r.json()["message"] and "curl -F file=@list.csv" in r.json()["message"]
    r = client.post("/v1/contact-lists", headers={**key.headers, "content-type": "application/json"}, content=b"{}")
    assert r.status_code == 400 and r.json()["code"] == "input.media_type", r.text
    assert r.json()["where"] == "header Content-Type"
    r = client.post("/v1/contact-lists", headers=key.headers,  # two files: which one?
                    files=[("file", ("a.csv", csv, "text/csv")), ("file", ("b.csv", csv, "text/csv"))])
    assert r.status_code == 400 and r.json()["code"] == "input.multipart", r.text
    # GBK in a text part (no file name): litestar decodes it as UTF-8; the answer says to upload a file
    part = b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\n' + "你好".encode("gbk") + b"\r\n--x--\r\n"
    r = client.post("/v1/contact-lists", headers={**key.headers, "content-type": "multipart/form-data; boundary=x"},
                    content=part)
    assert r.status_code == 400 and r.json()["code"] == "input.encoding", r.text
