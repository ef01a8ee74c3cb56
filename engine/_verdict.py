"""What goes into the engine (Message) and what comes out (Verdict, Reason)."""

from __future__ import annotations

from typing import Literal

import msgspec

Decision = Literal["pass", "review", "block"]
Source = Literal["lexicon", "rule", "classifier"]


class Message(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One SMS to screen, as the CLI's JSON lines and ``POST /v1/screen`` take it."""

    text: str
    id: str | int | None = None
    kind: Literal["verification", "notification", "marketing"] | None = None
    signature: str | None = None
    tenant: str | None = None


class Reason(msgspec.Struct):
    """Why a verdict is what it is. ``start``/``end`` index the ORIGINAL text (end exclusive).

    Positional arguments are allowed (in field order) so the engine can build a batch's lexicon reasons with
    ``map`` over columns, in C; write keywords everywhere else."""

    code: str
    category: str
    severity: str
    source: Source
    action: Decision
    message: str
    term: str | None = None
    start: int | None = None
    end: int | None = None


class ClassifierResult(msgspec.Struct, kw_only=True):
    score: float
    category: str | None = None
    category_score: float | None = None


class Versions(msgspec.Struct, kw_only=True):
    policy: str
    lexicon: str
    model: str  # "none" when no classifier model is loaded


class Verdict(msgspec.Struct, kw_only=True):
    id: str | int | None
    decision: Decision
    score: float
    kind: str
    kind_inferred: bool
    length: int
    segments: int
    reasons: list[Reason]
    versions: Versions
    classifier: ClassifierResult | None = None
    notes: list[str] = []
