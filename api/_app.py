"""The screening API: POST /v1/screen, POST /v1/screen/batch, GET /healthz, OpenAPI at /schema.

Errors of this project answer with their status code and ``{"code", "message", "where"}``;
request bodies that do not fit the schema answer 400 naming the JSON path.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig

from engine import Engine, Message, SmsguardError, Verdict, default_config

MAX_BATCH = 1000


class ScreenBatch(msgspec.Struct, forbid_unknown_fields=True):
    messages: list[Message]
    content_only: bool = False


class BatchVerdicts(msgspec.Struct):
    verdicts: list[Verdict]


class Health(msgspec.Struct):
    status: str
    policy: str
    lexicon: str
    model: str


def create_app(engine: Engine | None = None) -> Litestar:
    engine = engine or Engine(default_config())

    @post("/v1/screen", status_code=200, summary="Screen one message")
    async def screen(data: Message, content_only: bool = False) -> Verdict:
        return engine.screen(data, content_only=content_only)

    @post("/v1/screen/batch", status_code=200, summary="Screen up to 1,000 messages")
    async def screen_batch(data: ScreenBatch) -> BatchVerdicts:
        if not data.messages:
            raise SmsguardError("messages must not be empty", where="$.messages", code="input.empty_batch")
        if len(data.messages) > MAX_BATCH:
            raise SmsguardError(
                f"at most {MAX_BATCH} messages per batch, got {len(data.messages)}",
                where="$.messages",
                code="input.batch_too_large",
            )
        for i, m in enumerate(data.messages):
            if not m.text.strip():
                raise SmsguardError("text must not be empty", where=f"$.messages[{i}].text", code="input.empty_text")
        return BatchVerdicts(engine.screen_many(data.messages, content_only=data.content_only))

    @get("/healthz", summary="Liveness and the versions in force")
    async def healthz() -> Health:
        v = engine.versions
        return Health(status="ok", policy=v.policy, lexicon=v.lexicon, model=v.model)

    def smsguard_error(_: Request, exc: SmsguardError) -> Response:
        return Response(exc.to_dict(), status_code=exc.status_code)

    def validation_error(_: Request, exc: ValidationException) -> Response:
        extra = exc.extra if isinstance(exc.extra, list) else []
        first = extra[0] if extra and isinstance(extra[0], dict) else {}
        where = first.get("key") or first.get("source") or "$"
        message = first.get("message") or exc.detail
        return Response({"code": "input.schema", "message": message, "where": where}, status_code=400)

    def http_error(_: Request, exc: HTTPException) -> Response:
        return Response({"code": "http.error", "message": exc.detail, "where": None}, status_code=exc.status_code)

    return Litestar(
        route_handlers=[screen, screen_batch, healthz],
        exception_handlers={
            SmsguardError: smsguard_error,
            ValidationException: validation_error,
            HTTPException: http_error,
        },
        openapi_config=OpenAPIConfig(title="smsguard", version="0.1.0"),
    )
