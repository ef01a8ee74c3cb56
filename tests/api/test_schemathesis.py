"""Schemathesis against our own OpenAPI, on a live server per backend: generated valid and invalid
requests for every operation must never get a 5xx nor an answer that breaks the documented schema
(status code, content type, headers and body)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from live_server import live_server
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
    from smsguard.api import create_app

    port = free_port()
    app = create_app(api_engine, settings=backend.settings(redis_namespace=f"{backend.namespace}:st"))
    with live_server(app, port, ready_within=20) as base:
        yield base


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
    from smsguard.storage import create_key, create_tenant

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
            # nothing to break: the operation takes no parameters and no body (/healthz, /readyz, /metrics), or
            # any bytes in the vendor's own format, checked by its signature (the drop-in vendor endpoints)
            assert op.path in ("/healthz", "/readyz", "/metrics", "/", "/tencent", "/aliyun"), op.path
    # the generated requests did reach the handlers: valid ones are screened, invalid ones refused
    print(sorted(statuses.items()))
    if mode is GenerationMode.POSITIVE:
        assert statuses["POST /v1/screen 200"] >= 5 and statuses["POST /v1/screen/batch 200"] >= 5
    else:
        assert statuses["POST /v1/screen 400"] >= 5 and statuses["POST /v1/screen/batch 400"] >= 5


# -- the schemathesis command with every conformance check (issue 15) ------------------------------------
# Beyond the checks above: schema-valid requests must be accepted (positive_data_acceptance), schema-violating
# ones refused (negative_data_rejection), Allow must list a path's methods (allow_header_conformance; OPTIONS
# /v1/budget left out PUT), missing headers and undeclared methods refused. The command runs the examples,
# coverage and fuzzing phases, deterministically, with a key that is not an admin's (a reload per request
# would take most of the time; the admin routes answer 403, which the checks accept).

# What is still refused although the document allows it, or taken although it does not. Each is a rule the
# document does not say yet; the list may only shrink (an entry that no longer fails can go).
KNOWN: dict[tuple[str, str], str] = {
    ("GET /v1/audit/trail", "ST202"): "exactly one of batch / phone: not expressible for query parameters",
    ("POST /v1/batches", "ST202"): "template_id + list_id or content + numbers: the body schema has no oneOf",
    ("POST /v1/contact-lists", "ST202"): "the CSV body (header, rows) is not described in the document",
    ("POST /v1/contact-lists/merge", "ST202"): "two different lists that exist and are the key's tenant's: ids "
    "that exist are not expressible in a schema (an ordered list of distinct ids neither)",
    ("POST /v1/signatures", "ST202"): "the multipart form (name, type, use, documents files) is not described",
    ("POST /v1/templates", "ST202"): "signature 2-12 characters after stripping 【】 and blanks: no schema",
    ("POST /v1/messages", "ST202"): "template_id or text, a signature (field or 【】), known variables: no oneOf",
    ("POST /v1/verify", "ST202"): "a signature or a verification template (body or settings): no oneOf",
    ("POST /v1/verify/check", "ST202"): "to or verification_id, and one that exists: no oneOf",
    ("GET /v1/messages", "ST202"): "query phone: parse_phone's spellings, not expressible as one pattern",
    ("POST /v1/signatures/{signature_id}/resubmit", "ST202"): "documents are checked by their content (PDF, PNG, "
    "JPEG magic bytes), which a schema cannot say",
    # the drop-in Aliyun endpoint refuses an unsigned request (400 IncompleteSignature): the command has a
    # smsguard key, not an Aliyun AccessKey, and an HMAC over the request is not something a document can say
    ("POST /", "ST202"): "an Aliyun request signature is required (Tencent's errors are 200s, as Tencent's)",
    ("POST /aliyun", "ST202"): "an Aliyun request signature is required",
    ("POST /tencent", "ST201"): "Tencent answers every error, a malformed body too, with HTTP 200 and Response.Error",
    # found once the document's examples made a draft content batch for the test's tenant (issue 17)
    ("POST /v1/batches/{batch_id}/submit", "ST202"): "a content batch is submitted with its numbers (never "
    "stored): a rule of the batch named in the path, not expressible in the body schema",
    # parse_phone takes more than the documented pattern (phonenumbers drops a trailing `*`, ...)
    **{(f"POST {path}", "ST201"): "parse_phone is more lenient than the documented pattern"
       for path in ("/v1/optouts", "/v1/optouts/remove", "/v1/optouts/status", "/v1/complaints", "/v1/inbound")},
}
_FAILURE = re.compile(r'<testcase name="(?P<op>[^"]+)"[^>]*>\s*<failure type="failure" message="(?P<codes>[^"]+)"')


@pytest.mark.slow
def test_every_conformance_check_of_the_schemathesis_command(live: str, backend, tmp_path) -> None:
    from smsguard.storage import create_key, create_tenant

    tenant = create_tenant(backend.db, f"st-cli-{time.time_ns()}", rate_limit=10_000_000)
    key, _ = create_key(backend.db, tenant.name, admin=False)
    junit = tmp_path / "junit.xml"
    run = subprocess.run(
        [str(Path(sys.executable).parent / "st"), "run", f"{live}/schema/openapi.json",
         "-H", f"Authorization: Bearer {key}", "--checks", "all", "--exclude-checks", "use_after_free,"
         "ensure_resource_availability,object_level_authorization",  # stateful: need links the document has not
         "--phases", "examples,coverage,fuzzing", "--max-examples", "15", "--generation-deterministic",
         "-w", "2", "--no-color", "--report", "junit", "--report-junit-path", str(junit)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    failures = {(m["op"], code.strip()) for m in _FAILURE.finditer(junit.read_text())
                for code in m["codes"].split(",")}
    assert failures, run.stdout[-3000:]  # the KNOWN ones are still there: the report was read
    assert not {f for f in failures if f[1] in ("ST101", "ST103")}, run.stdout[-6000:]  # no 5xx, nothing undocumented
    assert failures <= set(KNOWN), (sorted(failures - set(KNOWN)), run.stdout[-6000:])
