"""The operators' routes through the running app (admin keys only), on both backends, and the CLI."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from litestar import Request, post
from litestar.testing import TestClient

from smsguard.api._pumping import PumpingApi


@pytest.fixture(scope="module")
def client(backend, migrated_db) -> Iterator[TestClient]:
    from smsguard.api import create_app

    with TestClient(create_app(settings=backend.settings(rate_limit=1_000_000, model_path=None))) as c:
        yield c


@pytest.fixture
def keys(backend, client: TestClient) -> tuple[int, dict[str, str], dict[str, str]]:
    from smsguard.storage import create_key, create_tenant

    t = create_tenant(backend.db, f"pumpapi-{uuid.uuid4().hex[:8]}")
    admin, _ = create_key(backend.db, t.name, role="admin")
    plain, _ = create_key(backend.db, t.name, role="client")
    return t.id, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {plain}"}


def _prefix() -> str:
    return random.choice(("134", "147", "178", "195")) + f"{random.randrange(10_000):04d}"


def test_block_list_lift_over_http(client: TestClient, keys) -> None:
    _, admin, plain = keys
    p = _prefix()
    refused = client.post("/v1/admin/pumping/block", headers=plain, json={"scope": "prefix", "value": p})
    assert refused.status_code == 403
    r = client.post("/v1/admin/pumping/block", headers=admin, json={"scope": "prefix", "value": p, "note": "IRSF"})
    assert r.status_code == 201, r.text
    rule = r.json()
    assert (rule["action"], rule["scope"], rule["label"], rule["code"], rule["note"]) == (
        "block", "prefix", p + "****", "pumping.operator", "IRSF")
    assert "subject" not in rule  # the keyed hash stays inside
    listed = client.get("/v1/admin/pumping/rules", headers=admin, params={"scope": "prefix"}).json()["rules"]
    assert rule["id"] in [x["id"] for x in listed]
    lifted = client.post("/v1/admin/pumping/lift", headers=admin, json={"rule_id": rule["id"]})
    assert lifted.status_code == 200 and lifted.json()["lifted"][0]["lifted_at"]
    again = client.post("/v1/admin/pumping/lift", headers=admin, json={"rule_id": rule["id"]})
    assert again.status_code == 404 and again.json()["code"] == "pumping.not_found"


def test_bad_input_is_a_4xx_naming_the_field(client: TestClient, keys) -> None:
    _, admin, _ = keys
    for body, where in (({"scope": "prefix", "value": "12"}, "$.value"), ({"scope": "ip", "value": "x"}, "$.value"),
                        ({"scope": "number", "value": "1380013800八"}, "$.value"),
                        ({"scope": "planet", "value": "1"}, "$.scope"), ({"scope": "ip"}, "$")):
        r = client.post("/v1/admin/pumping/allow", headers=admin, json=body)
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()) == {"code", "message", "where"} and r.json()["where"].startswith(where), (body, r.json())
    r = client.post("/v1/admin/pumping/lift", headers=admin, json={})
    assert r.status_code == 400 and r.json()["code"] == "pumping.lift"


def test_an_admin_names_only_its_own_tenant(client: TestClient, keys) -> None:
    tenant_id, admin, _ = keys
    r = client.post("/v1/admin/pumping/allow", headers=admin, json={"scope": "tenant", "value": str(tenant_id + 10**6)})
    assert r.status_code == 404 and r.json()["code"] == "tenant.not_found"
    r = client.post("/v1/admin/pumping/allow", headers=admin, json={"scope": "tenant", "value": str(tenant_id)})
    assert r.status_code == 201 and r.json()["label"] == f"tenant {tenant_id}"


def _cli(backend, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smsguard", "pumping", *args], env=backend.env(),
                          capture_output=True, text=True, timeout=120)


def test_cli_allow_block_list_lift(backend, migrated_db) -> None:
    p = _prefix()
    r = _cli(backend, "block", "prefix", p, "--note", "IRSF range")
    assert r.returncode == 0, r.stderr
    rule_id, action, scope, label, code = r.stdout.split("\t")[:5]
    assert (action, scope, label, code) == ("block", "prefix", p + "****", "pumping.operator")
    r = _cli(backend, "allow", "number", p + "0001")
    assert r.returncode == 0 and "\tallow\tnumber\t" + p[:3] + "****0001\t" in r.stdout, r.stdout + r.stderr
    listed = _cli(backend, "list", "--scope", "prefix").stdout
    assert any(line.startswith(rule_id + "\t") for line in listed.splitlines())
    r = _cli(backend, "lift", "prefix", p)
    assert r.returncode == 0 and r.stdout.startswith(rule_id + "\t") and "\tlifted\t" in r.stdout
    r = _cli(backend, "lift", "prefix", p)
    assert r.returncode == 2 and "pumping.not_found" in r.stderr
    r = _cli(backend, "block", "prefix", "12345")
    assert r.returncode == 2 and "[pumping.prefix]" in r.stderr


def test_a_sending_route_answers_429_through_the_app(backend, migrated_db) -> None:
    """What ``POST /v1/messages`` / ``/v1/verify`` will do: one ``enforce`` line, the app's own error handler
    answering the refusal (429, ``code`` / ``message`` / ``where``, ``Retry-After`` only when throttled)."""
    from smsguard.api import create_app
    from smsguard.storage import create_tenant

    tenant_id = create_tenant(backend.db, f"pumpsend-{uuid.uuid4().hex[:8]}").id
    settings = backend.settings(redis_namespace=f"{backend.namespace}:ps-{uuid.uuid4().hex[:8]}",
                                pumping_number_limit=1, pumping_block_after=2, model_path=None)

    @post("/test/send", status_code=200)
    async def send(request: Request, pumping: PumpingApi, data: dict[str, str]) -> dict[str, str]:
        await pumping.enforce(request, phone=data["to"], tenant_id=tenant_id, ip="192.0.2.1")
        return {"state": "accepted"}

    app = create_app(settings=settings)
    app.register(send)
    number = "1478" + f"{random.randrange(10**7):07d}"
    with TestClient(app) as c:
        assert c.post("/test/send", json={"to": number}).json() == {"state": "accepted"}
        r = c.post("/test/send", json={"to": number})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        body = r.json()
        assert (body["code"], body["where"]) == ("pumping.number_velocity", "$.to") and set(body) == {
            "code", "message", "where"}
        r = c.post("/test/send", json={"to": number})  # strike 2: blocked, in SQL
        assert r.status_code == 429 and "Retry-After" not in r.headers
        assert r.json()["code"] == "pumping.number_velocity" and "blocked" in r.json()["message"]
        bad = c.post("/test/send", json={"to": "1380013800八"})
        assert bad.status_code == 400 and bad.json()["code"] == "phone.invalid"
