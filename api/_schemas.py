"""Request and response bodies (msgspec structs; litestar derives the OpenAPI schema from them)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from smsguard.engine import Message, Verdict

MAX_BATCH = 1000


class ScreenVerdict(Verdict, kw_only=True):
    """A verdict as the API answers it: the engine's verdict plus its audit id."""

    verdict_id: str
    """Id of the stored verdict: ``GET /v1/verdicts/{verdict_id}``."""
    cached: bool
    """True when this content had been screened before under the same policy, lexicon and model versions."""


class ReviewState(msgspec.Struct):
    """The human decision on a verdict that went to review."""

    status: Literal["pending", "approved", "rejected"]
    decided_at: str | None = None


class StoredVerdict(ScreenVerdict, kw_only=True):
    """A verdict as stored for audit."""

    created_at: str
    text: str
    review: ReviewState | None = None
    """Set when the verdict was ``review``: the reviewers' decision (pending until one is made)."""


class ScreenBatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    messages: Annotated[list[Message], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
    """1 to 1,000 messages; each is screened (identical ones once) and answered in order."""
    content_only: bool = False


class BatchVerdicts(msgspec.Struct):
    verdicts: list[ScreenVerdict]


class Health(msgspec.Struct):
    status: str
    policy: str
    lexicon: str
    model: str


class Ready(msgspec.Struct):
    status: Literal["ready", "unavailable"]
    database: str
    redis: str


class ReloadRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    what: list[Literal["policy", "lexicon", "model"]] = []
    """What to reload; empty = all three."""


class ReloadResult(msgspec.Struct):
    policy: str
    lexicon: str
    model: str


class ErrorBody(msgspec.Struct):
    """Every error answer: a stable code, a human message, and where (a JSON path, a header) when known."""

    code: str
    message: str
    where: str | None = None
