"""Webhook routes (issue 17, point 4), all with the API key's tenant; another tenant's webhook or event is 404.

* ``POST /v1/webhooks`` (the secret is in this answer only) · ``GET /v1/webhooks`` · ``GET /v1/webhooks/{id}`` ·
  ``PATCH /v1/webhooks/{id}`` · ``DELETE /v1/webhooks/{id}`` · ``POST /v1/webhooks/{id}/rotate-secret``
* ``GET /v1/webhooks/{id}/deliveries`` (the delivery log: attempts, status codes, latency, errors)
* ``GET /v1/webhooks/dead-letters`` · ``GET /v1/webhooks/events/{event_id}`` ·
  ``POST /v1/webhooks/events/{event_id}/resend``
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from smsguard import webhooks

from ._batch_schemas import MAX_ID, Time, _Out
from ._batches import Id, _as, errors
from ._service import Service

# What webhooks.check_url and check_event_types take, said in the schema (an http(s) URL with a host and no
# credentials: no "@" in its authority; a known event type or *), so a client's schema-valid body is accepted
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000,
                                  pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\s:\[\]]+"
                                  r"(:(\d{1,4}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d\d|655[0-2]\d|6553[0-5])?)?"
                                  r"([/?#].*)?$",
                                  description="http:// or https:// URL with a host, without user:password@")]
EventType = Literal[("*", *webhooks.EVENT_TYPES)]  # type: ignore[valid-type]
Events = Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=20,
                                                 description=f"of {', '.join(webhooks.EVENT_TYPES)}, or *")]
# a whole number: 4 or 4.0, as JSON Schema's integer (msgspec's int refuses 4.0); handed on as an int
Concurrency = Annotated[float, msgspec.Meta(ge=1, le=32, multiple_of=1,
                                            description="requests in flight to this URL at most (a whole number)")]
Timeout = Annotated[float, msgspec.Meta(ge=0.1, le=60, description="seconds per request")]
Description = Annotated[str, msgspec.Meta(max_length=200, pattern="^[^\x00]*$")]
EventId = Annotated[str, PathParameter(min_length=1, max_length=40)]


class WebhookOut(_Out, omit_defaults=True):
    id: int
    url: str
    events: list[str]
    description: str
    enabled: bool
    max_concurrency: int
    timeout: float  # seconds per request
    previous_secret_valid_until: Annotated[Time | None, msgspec.Meta(
        description="Until when the secret before the last rotation is still signed with; null: it is not")]
    created_at: Time
    updated_at: Time | None
    secret: Annotated[str | None, msgspec.Meta(
        description="The signing secret: in the answers of create and rotate-secret only")] = None


class WebhookList(_Out):
    webhooks: list[WebhookOut]


class Deleted(_Out):
    id: int
    deleted: bool
    cancelled_deliveries: int


class Attempt(_Out):
    attempt: int
    at: Time | None
    status_code: int | None
    latency_ms: float
    error: str | None


class Delivery(_Out):
    id: int
    webhook_id: int
    event_id: str
    event_type: str
    subject: str
    status: Literal["pending", "delivered", "dead", "cancelled"]
    attempts: int
    next_attempt_at: Time | None
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    created_at: Time | None
    finished_at: Time | None
    attempt_log: list[Attempt]


class DeliveryPage(_Out):
    deliveries: list[Delivery]
    next_after: Annotated[int | None, msgspec.Meta(description="The `after` of the next page; null: the last one")]


class EventOut(_Out):
    """An event as its receivers get it."""

    id: str
    type: str
    subject: str
    created_at: Time | None
    data: dict[str, Any]


class Resent(_Out):
    id: int  # the new delivery
    webhook_id: int


class ResendOut(_Out):
    event_id: str
    deliveries: list[Resent]


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url
    events: Events
    description: Description = ""
    enabled: bool = True
    max_concurrency: Concurrency = 4
    timeout: Timeout = 10.0


class WebhookPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: bool | None = None
    max_concurrency: Concurrency | None = None
    timeout: Timeout | None = None


class RotateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    grace_seconds: Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 3600)] = 24 * 3600.0


class ResendIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    webhook_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None


class WebhookApi:
    def __init__(self, service: Service) -> None:
        self.service = service

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        db = self.service.runtime.db
        return await anyio.to_thread.run_sync(lambda: fn(db, *args, **kwargs))

    def handlers(self, guard: Any, security: Any) -> list[Any]:
        api = self
        common: dict[str, Any] = {"guards": [guard], "security": security, "tags": ["webhooks"]}

        def actor(request: Request) -> str:
            return f"key:{request.state.key.prefix}"

        def tid(request: Request) -> int:
            return request.state.key.tenant_id

        @post("/v1/webhooks", status_code=201, summary="Add a webhook endpoint (its signing secret is shown once)",
              responses=errors(400, 401, 409, 503), **common)
        async def create(request: Request, data: JSONBody[WebhookIn]) -> WebhookOut:
            return _as(WebhookOut, await api.call(
                webhooks.create_endpoint, tid(request), url=data.url, events=data.events,
                description=data.description, enabled=data.enabled, max_concurrency=int(data.max_concurrency),
                timeout=data.timeout, actor=actor(request)))

        @get("/v1/webhooks", summary="The tenant's webhook endpoints", responses=errors(401), **common)
        async def index(request: Request) -> WebhookList:
            return _as(WebhookList, {"webhooks": await api.call(webhooks.list_endpoints, tid(request))})

        @get("/v1/webhooks/{webhook_id:int}", summary="One webhook endpoint", responses=errors(400, 401, 404),
             **common)
        async def show(request: Request, webhook_id: Id) -> WebhookOut:
            return _as(WebhookOut, await api.call(webhooks.get_endpoint, tid(request), webhook_id))

        @patch("/v1/webhooks/{webhook_id:int}", summary="Change a webhook endpoint (fields given only)",
               responses=errors(400, 401, 404, 503), **common)
        async def change(request: Request, webhook_id: Id, data: JSONBody[WebhookPatch]) -> WebhookOut:
            values = msgspec.structs.asdict(data)
            if values["max_concurrency"] is not None:
                values["max_concurrency"] = int(values["max_concurrency"])
            return _as(WebhookOut, await api.call(webhooks.update_endpoint, tid(request), webhook_id,
                                                  actor=actor(request), **values))

        @delete("/v1/webhooks/{webhook_id:int}", status_code=200,
                summary="Delete a webhook endpoint (pending deliveries are cancelled; the log stays)",
                responses=errors(400, 401, 404, 503), **common)
        async def remove(request: Request, webhook_id: Id) -> Deleted:
            return _as(Deleted, await api.call(webhooks.delete_endpoint, tid(request), webhook_id,
                                               actor=actor(request)))

        @post("/v1/webhooks/{webhook_id:int}/rotate-secret", status_code=200,
              summary="A new signing secret (shown once); the old one is still signed with for grace_seconds",
              responses=errors(400, 401, 404, 503), **common)
        async def rotate(request: Request, webhook_id: Id, data: JSONBody[RotateIn]) -> WebhookOut:
            return _as(WebhookOut, await api.call(webhooks.rotate_secret, tid(request), webhook_id,
                                                  grace=data.grace_seconds, actor=actor(request)))

        @get("/v1/webhooks/{webhook_id:int}/deliveries",
             summary="The delivery log: each delivery with its attempts (status code, latency, error)",
             responses=errors(400, 401, 404), **common)
        async def log(request: Request, webhook_id: Id,
                      status: Annotated[Literal["pending", "delivered", "dead", "cancelled"] | None,
                                        QueryParameter(name="status")] = None,
                      event_id: Annotated[str | None, QueryParameter(name="event_id", max_length=40)] = None,
                      after: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
                      limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100) -> DeliveryPage:
            return _as(DeliveryPage, await api.call(webhooks.list_deliveries, tid(request), webhook_id,
                                                    status=status, event_id=event_id, after=after, limit=limit))

        @get("/v1/webhooks/dead-letters", summary="Deliveries given up after the retry window (re-send by event id)",
             responses=errors(400, 401), **common)
        async def dead(request: Request, after: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
                       limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100) -> DeliveryPage:
            return _as(DeliveryPage, await api.call(webhooks.list_dead_letters, tid(request), after=after,
                                                    limit=limit))

        @get("/v1/webhooks/events/{event_id:str}", summary="One event as receivers get it",
             responses=errors(400, 401, 404), **common)
        async def event(request: Request, event_id: EventId) -> EventOut:
            return _as(EventOut, await api.call(webhooks.get_event, tid(request), event_id))

        @post("/v1/webhooks/events/{event_id:str}/resend", status_code=200,
              summary="Deliver an event again, with the same event id (to one webhook, or to those it went to)",
              responses=errors(400, 401, 404, 503), **common)
        async def resend(request: Request, event_id: EventId, data: JSONBody[ResendIn]) -> ResendOut:
            return _as(ResendOut, await api.call(webhooks.resend_event, tid(request), event_id,
                                                 endpoint_id=data.webhook_id, actor=actor(request)))

        return [create, index, show, change, remove, rotate, log, dead, event, resend]
