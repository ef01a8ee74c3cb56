"""The JSON body decoder (api/_body.py): every body a client can send is a value of the handler's type or a 400
with ``code``, ``message`` and ``where`` in the API's own names; never a 500 (issue 15: invalid UTF-8, 10k-deep
nesting, overflowing budgets, ``"content_only": 0`` taken for a bool, ``where: "$.phone_raw"``).

The HTTP cases run on both backends (the budget overflow was a SQLite / PostgreSQL integer overflow); the
decoder itself is fuzzed with hypothesis, bounded (a few seconds)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from smsguard.api._body import MAX_DEPTH, BodyError, decode_body
from smsguard.engine import Message

JSON = {"content-type": "application/json"}


def refusal(response: Any, code: str | None = None) -> dict[str, Any]:
    """The 400 body; ``code`` when given must match."""
    assert response.status_code == 400, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"code", "message", "where"} and body["message"] and body["where"], body
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture
def key(make_tenant) -> dict[str, str]:
    return make_tenant(admin=True, rate_limit=1_000_000).headers


# -- the 500s of issue 15, each through the running app -----------------------------------------------


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xed\xa0\x80", b"ok\xc3", b"\xc0\xaf"],
                         ids=["ff-fe", "cesu", "cut", "overlong"])
def test_invalid_utf8_inside_a_string_is_a_400(client: TestClient, key, bad: bytes) -> None:
    for path, body in [("/v1/screen", b'{"text": "%s"}'), ("/v1/screen/batch", b'{"messages": [{"text": "%s"}]}'),
                       ("/v1/templates", b'{"name": "%s", "kind": "marketing", "signature": "x", "body": "y"}')]:
        r = client.post(path, content=body % bad, headers={**key, **JSON})
        got = refusal(r, "input.encoding")
        assert got["where"] == "$" and "UTF-8" in got["message"] and "byte" in got["message"]


@pytest.mark.parametrize("opener", [b"[", b'{"a":'], ids=["arrays", "objects"])
def test_ten_thousand_deep_nesting_is_a_400(client: TestClient, key, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    deep = opener * 10_000 + b"1" + closer * 10_000
    for path, body in [("/v1/screen", deep), ("/v1/screen", b'{"text": "x", "id": ' + deep + b"}"),
                       ("/v1/screen/batch", b'{"messages": ' + deep + b"}"), ("/v1/budget", deep)]:
        method = client.put if path == "/v1/budget" else client.post
        got = refusal(method(path, content=body, headers={**key, **JSON}), "input.json_depth")
        assert got["where"] == "$"


@pytest.mark.parametrize("limit", ["1e20", "9300000000000", "1e308", "1e400", "-1", "-0.5"])
def test_a_budget_out_of_range_is_a_400(client: TestClient, key, limit: str) -> None:
    r = client.put("/v1/budget", content=b'{"limit": %s}' % limit.encode(), headers={**key, **JSON})
    got = refusal(r, "input.schema")
    assert got["where"] == "$.limit"
    assert client.get("/v1/budget", headers=key).status_code == 200  # and nothing half-written


def test_the_largest_budget_is_stored_and_read_back(client: TestClient, key) -> None:
    r = client.put("/v1/budget", json={"limit": 1e12}, headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["limit"] == "1000000000000.0000"
    assert client.put("/v1/budget", json={"limit": None}, headers=key).status_code == 200


# -- strict types: JSON's own, as the OpenAPI document says --------------------------------------------


@pytest.mark.parametrize("value", [0, 1, "true", "false", None, [], {}])
def test_a_bool_field_takes_only_true_or_false(client: TestClient, key, value: object) -> None:
    r = client.post("/v1/screen/batch", json={"messages": [{"text": "您好"}], "content_only": value}, headers=key)
    got = refusal(r, "input.schema")
    assert got["where"] == "$.content_only" and "bool" in got["message"]
    r = client.post("/v1/screen/batch", json={"messages": [{"text": "您好"}], "content_only": True}, headers=key)
    assert r.status_code == 200, r.text


def test_a_string_field_takes_no_number_and_a_number_no_string(client: TestClient, key) -> None:
    assert refusal(client.post("/v1/screen", json={"text": 5}, headers=key))["where"] == "$.text"
    got = refusal(client.put("/v1/budget", json={"limit": "5"}, headers=key))
    assert got["where"] == "$.limit"


# -- `where` names what the client sent, not a parameter inside the service ----------------------------


@pytest.mark.parametrize(
    ("path", "body", "code", "where"),
    [
        ("/v1/inbound", {"phone": "1381234\x005678", "text": "TD"}, "phone.invalid", "$.phone"),
        ("/v1/inbound", {"phone": "", "text": "TD"}, "phone.empty", "$.phone"),
        ("/v1/optouts", {"phone": ""}, "phone.empty", "$.phone"),
        ("/v1/inbound", {"phone": "13812345678", "text": "TD", "id": "a\x00"}, "input.nul", "$.id"),
        ("/v1/inbound", {"phone": "13812345678", "text": "T\x00D"}, "input.nul", "$.text"),
        ("/v1/complaints", {"phone": "13812345678", "id": "c\x00"}, "input.nul", "$.id"),
    ],
)
def test_errors_name_the_fields_of_the_api(client: TestClient, key, path: str, body: dict, code: str,
                                           where: str) -> None:
    got = refusal(client.post(path, json=body, headers=key), code)
    assert got["where"] == where


def test_an_mo_gateway_longer_than_its_column_is_refused_not_a_500(client: TestClient, key) -> None:
    body = {"phone": "13812345678", "text": "hello", "gateway": "g" * 100, "id": "dup-1"}
    for _ in range(2):  # the second used to miss the repeat check (the stored name was cut to 64) and hit UNIQUE
        assert refusal(client.post("/v1/inbound", json=body, headers=key), "input.schema")["where"] == "$.gateway"
    short = {**body, "gateway": "g" * 64}
    assert client.post("/v1/inbound", json=short, headers=key).status_code == 200
    assert client.post("/v1/inbound", json=short, headers=key).json()["repeat"] is True


def test_a_nul_in_a_query_parameter_is_named_as_one(client: TestClient, key) -> None:
    batch = client.post("/v1/batches", json={"content": "【示例商城】您的快递已到。", "numbers": ["13812345678"],
                                             "draft": True}, headers=key)
    assert batch.status_code == 201, batch.text
    r = client.get(f"/v1/batches/{batch.json()['id']}/recipients", params={"status": "a\x00"}, headers=key)
    assert refusal(r, "input.nul")["where"] == "query status"
    # a contact list's name (a query parameter of the CSV upload) too: schemathesis found it a 500 on PostgreSQL
    r = client.post("/v1/contact-lists", params={"name": "a\x00"}, content=b"phone\n13812345678\n",
                    headers={**key, "content-type": "text/csv"})
    assert refusal(r, "input.nul")["where"] == "query name"


# -- the decoder itself, fuzzed ----------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_up_to_the_limit_decodes_and_brackets_in_strings_do_not_count() -> None:
    assert decode_body(_nested(MAX_DEPTH)) is not None
    with pytest.raises(BodyError) as e:
        decode_body(_nested(MAX_DEPTH + 1))
    assert (e.value.code, e.value.where) == ("input.json_depth", "$")
    text = "[{" * 5000 + '\\"]'
    assert decode_body(msgspec.json.encode({"text": text}), Message).text == text


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=10,
)


def _mutate(data: st.DataObject, raw: bytes) -> bytes:
    """Cut, flip or insert bytes (invalid UTF-8, brackets, quotes, backslashes) at random places."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(out)))
        what = data.draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3", b"[", b"{", b'"', b"\\", b"\x00", b""]))
        out[at:at + data.draw(st.integers(0, 2))] = what
    return bytes(out)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), value=_json | st.fixed_dictionaries({"text": st.text(max_size=30)}, optional={"kind": _json}),
       target=st.sampled_from([Any, Message, dict[str, str], list[int]]))
def test_any_bytes_decode_or_are_refused_with_code_and_where(data: st.DataObject, value: object, target: Any) -> None:
    raw = _mutate(data, msgspec.json.encode(value))
    try:
        decoded = decode_body(raw, target)
    except BodyError as e:
        assert e.code in ("input.json", "input.schema", "input.encoding", "input.json_depth")
        assert e.message and e.where and e.where.startswith("$")
        return
    # what decodes is of the target type, and strict: it re-encodes to the same JSON value
    if target is not Any:
        assert msgspec.json.decode(msgspec.json.encode(decoded), type=target, strict=True) == decoded


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(depth=st.integers(MAX_DEPTH + 1, 20_000), kind=st.sampled_from([b"[", b'{"k":']))
def test_any_deep_nesting_is_refused_before_decoding(depth: int, kind: bytes) -> None:
    closer = b"]" if kind == b"[" else b"}"
    with pytest.raises(BodyError) as e:
        decode_body(kind * depth + b"0" + closer * depth)
    assert e.value.code == "input.json_depth"
