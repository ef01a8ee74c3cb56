"""Schemathesis against our own OpenAPI, on a live server per backend: generated valid and invalid
requests for every operation must never get a 5xx nor an answer that breaks the documented schema
(status code, content type, headers and body)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 25  # per operation and mode; the whole test stays well under a minute per backend


@pytest.fixture(scope="module")
def live(backend, api_engine, free_port) -> Iterator[str]:
    from api import create_app

    port = free_port()
    app = create_app(api_engine, settings=backend.settings(redis_namespace=f"{backend.namespace}:st"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        pytest.fail("live server did not become ready")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def free_port():  # module scope for `live` (the conftest one is per test)
    import socket

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick


def _fix_message(m: object) -> object:
    if isinstance(m, dict):
        m.pop("tenant", None)  # the key decides the tenant; any other value is refused (documented 400)
        if isinstance(m.get("text"), str) and not m["text"].strip():
            m["text"] = "x" + m["text"]  # blank text is refused (documented 400)
    return m


def _meet_rules_the_schema_cannot_say(case):
    """Valid-mode bodies also keep the two rules OpenAPI cannot express, so they reach the screening."""
    body = case.body
    if case.operation.path == "/v1/screen":
        _fix_message(body)
    elif case.operation.path == "/v1/screen/batch" and isinstance(body, dict):
        for m in body.get("messages") or []:
            _fix_message(m)
    return case


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_openapi_conformance(live: str, backend, mode: GenerationMode) -> None:
    from storage import create_key, create_tenant

    tenant = create_tenant(backend.db, f"st-{mode.value}-{time.time_ns()}", rate_limit=10_000_000)
    key, _ = create_key(backend.db, tenant.name, admin=False)
    headers = {"Authorization": f"Bearer {key}"}
    schema = schemathesis.openapi.from_url(f"{live}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/screen",
        "POST /v1/screen/batch",
        "GET /v1/verdicts/{verdict_id}",
        "POST /v1/admin/reload",
        "GET /healthz",
        "GET /readyz",
    }
    statuses: Counter[str] = Counter()
    for op in operations:
        strategy = op.as_strategy(generation_mode=mode)
        if mode is GenerationMode.POSITIVE:
            strategy = strategy.map(_meet_rules_the_schema_cannot_say)

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def run(case) -> None:
            name = f"{case.operation.method.upper()} {case.operation.path}"
            response = case.call(base_url=live, headers=headers)
            statuses[f"{name} {response.status_code}"] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            # nothing to break: the operation takes no parameters and no body (/healthz, /readyz, /metrics)
            assert op.path in ("/healthz", "/readyz", "/metrics"), op.path
    # the generated requests did reach the handlers: valid ones are screened, invalid ones refused
    print(sorted(statuses.items()))
    if mode is GenerationMode.POSITIVE:
        assert statuses["POST /v1/screen 200"] >= 5 and statuses["POST /v1/screen/batch 200"] >= 5
    else:
        assert statuses["POST /v1/screen 400"] >= 5 and statuses["POST /v1/screen/batch 400"] >= 5
