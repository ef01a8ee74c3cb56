"""The screening API (litestar, msgspec models, OpenAPI at ``/schema``).

Routes: ``POST /v1/screen``, ``POST /v1/screen/batch`` (≤ 1,000 messages), ``GET /v1/verdicts/{id}``,
``POST /v1/admin/reload`` (admin keys), ``GET /v1/audit/events`` and ``GET /v1/audit/trail`` (auditor keys),
``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

Every ``/v1`` route needs an API key (``Authorization: Bearer <key>`` or ``X-API-Key``). The key decides
the tenant: a message's ``tenant`` field may be left out or repeat the key's tenant; any other value is
rejected (403 ``input.tenant_mismatch``), never used. Errors answer ``{"code", "message", "where"}``:
400 for a body that does not fit the schema (``where`` is the JSON path), 401 for a missing or bad key,
403 for a non-admin key on an admin route, 404 for what the key's tenant cannot see (including other
tenants' verdicts), 413 for a body over ``SMSGUARD_MAX_BODY``, 429 with ``Retry-After`` for a tenant over
its rate limit, 503 when Redis or SQL is unreachable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
import phonenumbers
import redis.exceptions
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.routes import HTTPRoute
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import OperationalError

from smsguard.audit import EventFilter
from smsguard.console import ConsoleUI
from smsguard.core import ForbiddenError, Settings, SmsguardError, get_settings
from smsguard.engine import Engine, Message
from smsguard.review_ui import ReviewUI
from smsguard.runtime import Runtime
from smsguard.webauth import http_headers, http_status

from . import _billing as billing_api
from . import _channels as channel_api
from . import _docs as docs
from . import _messages as message_api
from . import _metrics as metrics
from . import _vendors as vendor_api
from ._batches import BatchApi
from ._body import ApiRequest
from ._examples import add_examples
from ._pumping import PumpingApi
from ._roles import roles_for, route_key
from ._schemas import (
    MAX_BATCH,
    BatchVerdicts,
    ErrorBody,
    Health,
    Ready,
    ReloadRequest,
    ReloadResult,
    ScreenBatch,
    ScreenVerdict,
    StoredVerdict,
)
from ._service import Service
from ._signatures import SignatureApi
from ._webhooks import WebhookApi

log = logging.getLogger("smsguard.api")
_encode = msgspec.json.Encoder().encode
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
# What parse_phone takes without fail, as a JSON Schema pattern: the national mobile pattern of phonenumbers'
# metadata (the one parse_phone matches), ASCII digits only, after an optional +86. The API takes more spellings
# (spaces, dashes, 0086); the document names the canonical one.
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"  # and something that is not white space
_CN_MOBILE = phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern
PHONE_PATTERN = "^(?:\\+?86)?(?:" + _CN_MOBILE.replace("\\d", "[0-9]") + ")$"

# The Content-Type headers of the responses that are not JSON, exactly as sent; the OpenAPI document lists
# these, not application/json. Litestar appends "; charset=utf-8" to every text/* media type, even one that
# has a charset already, so the routes here set the Content-Type header themselves.
JSONL_MEDIA_TYPE = "application/x-ndjson"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
METRICS_MEDIA_TYPE = CONTENT_TYPE_LATEST  # what api/_metrics.py exposition() answers
# path → (the 200's media types, its description, whether it is a download with Content-Disposition)
_NON_JSON_200: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "/v1/audit/events": ((JSONL_MEDIA_TYPE, CSV_MEDIA_TYPE), "JSON Lines (`format=jsonl`, the default) or CSV", True),
    "/v1/audit/trail": ((JSONL_MEDIA_TYPE, CSV_MEDIA_TYPE), "JSON Lines (`format=jsonl`, the default) or CSV", True),
    "/v1/contact-lists/{list_id}/rejects.csv": ((CSV_MEDIA_TYPE,), "CSV, a header line first", True),
    "/v1/contact-lists/{list_id}/export.csv": ((CSV_MEDIA_TYPE,), "CSV, a header line first", True),
    "/v1/batches/{batch_id}/report.csv": ((CSV_MEDIA_TYPE,), "CSV, a header line first", True),
    "/metrics": ((METRICS_MEDIA_TYPE,), "Prometheus text exposition format", False),
    "/v1/signatures/{signature_id}/documents/{document_id}": (
        ("application/pdf", "image/png", "image/jpeg"), "The document as uploaded (type from its magic bytes)", True),
}


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    text = {
        400: "The request does not fit the schema or a message is invalid; `where` names the JSON path",
        401: "Missing, malformed, unknown or revoked API key",
        403: "The key may not do this (admin routes need an admin key; a body `tenant` must be the key's own)",
        404: "Not found for this key's tenant",
        409: "Refused in the current state: a reload whose candidate would change more stored decisions than "
        "SMSGUARD_RELOAD_MAX_FLIP_RATE allows (the message gives the figures)",
        413: "Request body too large",
        422: "A policy, lexicon or model file is invalid (reload)",
        429: "The tenant is over its rate limit; see Retry-After",
        503: "Redis or the database is unreachable",
    }
    return {c: ResponseSpec(data_container=ErrorBody, description=text[c], generate_examples=False) for c in codes}


def _key_guard(service: Service):
    async def require_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        headers = connection.headers
        key = await service.authenticate(headers.get("authorization"), headers.get("x-api-key"))
        method, path = connection.scope.get("method", "GET"), connection.scope.get("path_template", "")
        allowed = roles_for(method, path)
        if key.role not in allowed:  # one table for every route (api/_roles.py); unknown routes: nobody
            raise ForbiddenError(f"a {key.role} key may not {route_key(method, path)[0]} {route_key(method, path)[1]}"
                            + (f" (needs {' or '.join(sorted(allowed))})" if allowed else ""),
                                 where="header Authorization", code="auth.forbidden")
        connection.state.key = key

    return require_key


def _key_check_before_request(guard):
    """The key guard as a ``before_request`` hook, for the screening routes: litestar hands every guard a
    ``copy()`` of the route handler, about a third of a cached screening request's CPU (bench/api_profile.py). It
    runs at the same point (before the body is read and validated), so answers are the same."""

    async def check_key(request: Request) -> None:
        await guard(request, request.route_handler)

    return check_key


def create_app(
    engine: Engine | None = None, *, settings: Settings | None = None, runtime: Runtime | None = None
) -> Litestar:
    """The application on ``runtime`` (default: a new one from ``settings`` and ``engine``, opened at start-up
    with migrations and closed at shutdown; a Runtime passed in is left open for its owner to close)."""
    owns = runtime is None
    runtime = runtime or Runtime(settings or get_settings(), screening=engine)
    settings = runtime.settings
    service = Service(runtime, owns_runtime=owns)
    guard = _key_guard(service)
    key_first = _key_check_before_request(guard)
    review_ui = ReviewUI(runtime)  # the reviewer web queue under /review (session + CSRF, not API keys)
    batch_api = BatchApi(service)  # templates, contact lists, batches, opt-outs, MO (api/_batches.py)
    console_ui = ConsoleUI(runtime)  # the customer web console under /console (session + CSRF)
    pumping_api = PumpingApi(service)  # anti-pumping guard + operators' routes (api/_pumping.py)
    webhook_api = WebhookApi(service)  # webhook endpoints, delivery log, re-sends (api/_webhooks.py)

    @post(
        "/v1/screen",
        status_code=200,
        summary="Screen one message",
        before_request=key_first,  # the key guard, without litestar's per-guard handler copy
        security=_SECURITY,
        responses=_errors(400, 401, 403, 413, 429, 503),
    )
    async def screen(
        request: Request, data: JSONBody[Message], content_only: FromQuery[bool] = False
    ) -> Response[ScreenVerdict]:
        [verdict] = await service.screen(request.state.key, [data], content_only=content_only, paths=["$"])
        return Response(content=verdict, media_type=MediaType.JSON)

    @post(
        "/v1/screen/batch",
        status_code=200,
        summary=f"Screen up to {MAX_BATCH:,} messages",
        before_request=key_first,  # the key guard, without litestar's per-guard handler copy
        security=_SECURITY,
        responses=_errors(400, 401, 403, 413, 429, 503),
    )
    async def screen_batch(request: Request, data: JSONBody[ScreenBatch]) -> Response[BatchVerdicts]:
        if not data.messages:
            raise SmsguardError("messages must not be empty", where="$.messages", code="input.empty_batch")
        if len(data.messages) > MAX_BATCH:
            raise SmsguardError(
                f"at most {MAX_BATCH} messages per batch, got {len(data.messages)}",
                where="$.messages",
                code="input.batch_too_large",
            )
        paths = [f"$.messages[{i}]" for i in range(len(data.messages))]
        verdicts = await service.screen(request.state.key, data.messages, content_only=data.content_only, paths=paths)
        return Response(content=b'{"verdicts":[' + b",".join(verdicts) + b"]}", media_type=MediaType.JSON)

    @get(
        "/v1/verdicts/{verdict_id:str}",
        summary="A stored verdict of this key's tenant",
        guards=[guard],
        security=_SECURITY,
        responses=_errors(401, 404, 503),
    )
    async def verdict(request: Request, verdict_id: FromPath[str]) -> StoredVerdict:
        return await service.stored_verdict(request.state.key, verdict_id)

    @post(
        "/v1/admin/reload",
        status_code=200,
        summary="Reload policy, lexicons and/or model on every process (admin key)",
        guards=[guard],
        security=_SECURITY,
        responses=_errors(400, 401, 403, 409, 422, 503),
    )
    async def reload(request: Request, data: JSONBody[ReloadRequest]) -> ReloadResult:
        if not request.state.key.admin:
            raise ForbiddenError("reloading needs an admin key (smsguard key create --admin)",
                                 where="header Authorization", code="auth.forbidden")
        v = await service.reload(list(dict.fromkeys(data.what)), actor=f"key:{request.state.key.prefix}")
        return ReloadResult(policy=v.policy, lexicon=v.lexicon, model=v.model)

    @get(
        "/v1/audit/events",
        summary="Export audit events as CSV or JSONL, streamed (auditor keys)",
        description=(
            "Events in chain order, filtered by tenant (name), time range (`from` ≤ ts < `to`, ISO 8601, UTC when "
            "no offset) and type (repeat `type`; `review.*` matches a prefix). An `auditor` key reads its own "
            "tenant with phone numbers masked (138****1234); an `auditor_full` key reads any tenant as stored. "
            "CSV cells starting with = + - @ tab or CR are prefixed with `'`. Every export is itself an `export` "
            "event. Columns/fields: id, ts, actor, tenant_id, event_type, subject, payload, prev_hash, hash."
        ),
        guards=[guard],
        security=_SECURITY,
        responses=_errors(400, 401, 403, 404, 503),
    )
    async def audit_events(
        request: Request,
        format: Annotated[Literal["csv", "jsonl"], QueryParameter(query="format")] = "jsonl",
        tenant: Annotated[str | None, QueryParameter(query="tenant", max_length=64)] = None,
        since: Annotated[datetime | None, QueryParameter(query="from")] = None,
        until: Annotated[datetime | None, QueryParameter(query="to")] = None,
        types: Annotated[list[str] | None, QueryParameter(query="type")] = None,
    ) -> Stream:
        flt = EventFilter(since=_utc(since), until=_utc(until), types=tuple(types or ()))
        chunks = await service.audit_export(request.state.key, flt, format, tenant=tenant, what="export")
        return _stream(chunks, format, "audit-events")

    @get(
        "/v1/audit/trail",
        summary="Every audit event that touched a batch or a phone number, in order (auditor keys)",
        description="Give `batch` (a batch id) or `phone` (a number; looked up by its keyed hash). Same roles, "
        "masking and formats as /v1/audit/events; recorded as an `export` event.",
        guards=[guard],
        security=_SECURITY,
        responses=_errors(400, 401, 403, 404, 503),
    )
    async def audit_trail(
        request: Request,
        batch: Annotated[str | None, QueryParameter(query="batch", max_length=64)] = None,
        phone: Annotated[str | None, QueryParameter(query="phone", max_length=32)] = None,
        format: Annotated[Literal["csv", "jsonl"], QueryParameter(query="format")] = "jsonl",
    ) -> Stream:
        if (batch is None) == (phone is None):
            raise SmsguardError("give exactly one of batch and phone", where="query batch", code="input.trail")
        phone_ref = None
        if phone is not None:
            try:
                phone_ref = service.phone_ref(phone)
            except SmsguardError as e:
                raise SmsguardError(e.message, where="query phone", code="input.phone") from None
        flt = EventFilter(batch=batch, phone_ref=phone_ref)
        chunks = await service.audit_export(request.state.key, flt, format, tenant=None, what="export")
        return _stream(chunks, format, "audit-trail")

    @get("/healthz", summary="Liveness and the versions in force")
    async def healthz() -> Health:
        v = service.engine.versions
        return Health(status="ok", policy=v.policy, lexicon=v.lexicon, model=v.model)

    @get(
        "/readyz",
        summary="Readiness: SQL and Redis reachable",
        responses={503: ResponseSpec(data_container=Ready, description="SQL or Redis unreachable")},
    )
    async def readyz() -> Response[Ready]:
        database, redis_state = await service.check_ready()
        ok = database == "ok" and redis_state == "ok"
        body = Ready(status="ready" if ok else "unavailable", database=database, redis=redis_state)
        return Response(body, status_code=200 if ok else 503)

    @get("/metrics", summary="Prometheus metrics", media_type=METRICS_MEDIA_TYPE)
    async def metrics_route() -> Response[str]:
        body, content_type = metrics.exposition()
        body += await review_ui.metrics_text()  # the review team's figures (review/_stats.py)
        if batch_api.ctx is not None:  # receipts outstanding per channel, gateways alive (api/_channels.py)
            body += await batch_api.call(channel_api.metrics_text, settings)
        return Response(content=body, media_type=content_type, headers={"Content-Type": content_type})

    app = Litestar(
        route_handlers=[
            screen, screen_batch, verdict, reload, audit_events, audit_trail, healthz, readyz, metrics_route,
            review_ui.router, console_ui.router, *batch_api.handlers(guard, _SECURITY),
            *channel_api.handlers(batch_api, guard, _SECURITY), *billing_api.handlers(batch_api, guard, _SECURITY),
            *message_api.handlers(batch_api, guard, _SECURITY),
            *SignatureApi(service).handlers(guard, _SECURITY),  # signature filing (api/_signatures.py)
            *webhook_api.handlers(guard, _SECURITY),
            *vendor_api.handlers(batch_api),  # vendor request signatures, not API keys (api/_vendors.py)
            *docs.assets(),
            *pumping_api.handlers(guard, _SECURITY),
        ],
        dependencies=pumping_api.dependency(),
        on_startup=[service.start, review_ui.start, batch_api.start, console_ui.start, pumping_api.start],
        on_shutdown=[pumping_api.stop, console_ui.stop, batch_api.stop, review_ui.stop, service.stop],
        middleware=[metrics.metrics_middleware],
        exception_handlers={
            SmsguardError: _smsguard_error,
            ValidationException: _validation_error,
            HTTPException: _http_error,
            redis.exceptions.ConnectionError: _unavailable,
            redis.exceptions.TimeoutError: _unavailable,
            OperationalError: _unavailable,
            Exception: _internal_error,
        },
        openapi_config=OpenAPIConfig(
            title="smsguard",
            version="0.1.0",
            description=docs.description("Moderation-first bulk-SMS screening."),
            render_plugins=docs.render_plugins(),  # every asset served by the app: works offline (api/_docs.py)
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="API key"),
                    "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
                }
            ),
        ),
        request_max_body_size=settings.max_body,
        request_class=ApiRequest,  # strict, typed JSON bodies; a 400 for any body, never a 500 (api/_body.py)
    )
    app.state.service = service
    _document_strictness(app)
    _document_non_json(app)
    add_examples(app)  # after the media types are final (api/_examples.py)
    _answer_options_with_every_method(app)
    return app


def _document_strictness(app: Litestar) -> None:
    """Say in the OpenAPI document what msgspec enforces: request objects take no unknown fields (every request
    body type and the types inside it), a message's text is not empty, and a phone number is a mainland mobile."""
    schemas = app.openapi_schema.components.schemas or {}
    for struct in _request_structs(app):
        if struct.__struct_config__.forbid_unknown_fields and struct.__name__ in schemas:
            schemas[struct.__name__].additional_properties = False
    for struct in _request_structs(app):
        for name, prop in (schemas[struct.__name__].properties or {}).items() if struct.__name__ in schemas else ():
            if not isinstance(prop, Schema):
                continue
            if (name == "phone" and struct.__name__.endswith("In")) or (
                    name == "to" and struct.__name__ in ("MessageIn", "VerifyIn", "CheckIn")):
                prop.pattern = PHONE_PATTERN
                prop.description = "A mainland China mobile number: 11 digits starting with 1, optionally after +86"
            elif _takes_text(prop):
                prop.pattern = prop.pattern or NO_NUL  # 400 input.nul: PostgreSQL text cannot hold U+0000
    if "BudgetIn" in schemas and schemas["BudgetIn"].properties:
        limit = schemas["BudgetIn"].properties["limit"]
        assert isinstance(limit, Schema)
        limit.minimum = 0  # litestar leaves out a `ge=0` (it tests the bound for truth)
    if "Message" in schemas and schemas["Message"].properties:
        text = schemas["Message"].properties["text"]
        text.min_length = 1
        text.pattern = NOT_BLANK
        text.description = "The SMS as sent; must not be blank (400 input.empty_text) nor contain NUL (400 input.nul)"


def _takes_text(prop: Schema) -> bool:
    """The property is a string, or a string or null."""
    if prop.type == OpenAPIType.STRING:
        return True
    return any(isinstance(o, Schema) and o.type == OpenAPIType.STRING for o in prop.one_of or ())


def _request_structs(app: Litestar) -> set[type[msgspec.Struct]]:
    """The msgspec Struct types of every route's ``data`` (request body), and the Structs they contain."""
    found: set[type[msgspec.Struct]] = set()

    def visit(t: Any) -> None:
        if isinstance(t, type) and issubclass(t, msgspec.Struct) and t not in found:
            found.add(t)
            for f in msgspec.structs.fields(t):
                visit(f.type)
        for arg in getattr(t, "__args__", ()) or ():  # list[Message], Message | None, Annotated[...]
            visit(arg)
        origin = getattr(t, "__origin__", None)
        if origin is not None and origin is not t:
            visit(origin)

    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is not None:
                visit(data.annotation)
    return found


def _answer_options_with_every_method(app: Litestar) -> None:
    """Litestar builds a path's automatic OPTIONS handler when the path's first handler is registered, and keeps
    it when later ones join: ``OPTIONS /v1/budget`` said ``Allow: GET, OPTIONS`` without the PUT. Point each such
    handler at its path's final route, whose ``methods`` has them all."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            fn = getattr(handler, "fn", None)
            if getattr(fn, "__name__", "") == "options_handler" and getattr(fn, "__closure__", None):
                for cell in fn.__closure__:
                    if isinstance(cell.cell_contents, HTTPRoute):
                        cell.cell_contents = route


def _document_non_json(app: Litestar) -> None:
    """Give the streamed exports and /metrics the media types they really send (litestar would document a
    ``Stream`` as application/json, and one media type at most). tests/api/test_openapi.py compares them with
    real responses."""
    paths = app.openapi_schema.paths or {}
    for path, (media_types, description, download) in _NON_JSON_200.items():
        operation = paths[path].get  # a KeyError here: the table above lost track of a route
        assert operation is not None and operation.responses is not None, path
        response = operation.responses["200"]
        assert not isinstance(response, Reference), path
        response.description = description
        response.content = {m: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)) for m in media_types}
        if download:
            response.headers = {
                **(response.headers or {}),
                "Content-Disposition": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING), description='`attachment; filename="…"`', required=True
                ),
            }


def _utc(value: datetime | None) -> datetime | None:
    """A date/time without an offset is UTC (the query parameters are documented as RFC 3339 date-times)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _stream(chunks: Iterator[bytes], fmt: str, name: str) -> Stream:
    media = CSV_MEDIA_TYPE if fmt == "csv" else JSONL_MEDIA_TYPE
    headers = {"Content-Type": media, "Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    return Stream(chunks, media_type=media, headers=headers)


def _smsguard_error(_: Request, exc: SmsguardError) -> Response:
    return Response(exc.to_dict(), status_code=http_status(exc), headers=http_headers(exc))


_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")


def _validation_error(request: Request, exc: ValidationException) -> Response:
    """400 naming where: ``$.messages[3].text`` for a body, ``query content_only`` for a parameter."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    first: dict[str, Any] = extra[0] if extra and isinstance(extra[0], dict) else {}
    message = str(first.get("message") or exc.detail)
    key = str(first.get("key") or "")
    source = first.get("source")
    source = getattr(source, "value", source)
    if source == "body" or not key:
        where = "$" if key in ("", "data") else f"$.{key}"
        if m := _UNKNOWN.search(message):
            name = m["name"]
            where += f".{name}" if name.isidentifier() else f"[{msgspec.json.encode(name).decode()}]"
    else:
        where = f"{source or 'parameter'} {_wire_name(request, key)}"
    return Response({"code": "input.schema", "message": message, "where": where}, status_code=400)


def _wire_name(request: Request, key: str) -> str:
    """A parameter as the client names it (``from``), not as the handler does (``since``)."""
    param = request.route_handler.parsed_fn_signature.parameters.get(key)
    definition = getattr(param, "kwarg_definition", None)
    alias = getattr(definition, "query", None) or getattr(definition, "header", None)  # from, Idempotency-Key
    return alias or key


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "input.too_large"}


def _http_error(_: Request, exc: HTTPException) -> Response:
    code = _HTTP_CODES.get(exc.status_code, "http.error")
    where = "body" if exc.status_code == 413 else None
    if exc.status_code == 400 and isinstance(exc.__cause__, SerializationException):  # the body is not JSON
        code, where = "input.json", "$"
    return Response(
        {"code": code, "message": exc.detail, "where": where}, status_code=exc.status_code, headers=exc.headers
    )


def _internal_error(request: Request, exc: Exception) -> Response:
    """A bug, not the client's input: logged with its traceback (a 500 used to leave no trace in the log)."""
    log.error("%s %s: unhandled %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return Response({"code": "internal", "message": "internal error (logged)", "where": None}, status_code=500)


def _unavailable(_: Request, exc: Exception) -> Response:
    return Response(
        {"code": "unavailable", "message": f"{type(exc).__name__}: backing service unreachable", "where": None},
        status_code=503,
    )
