"""Labelled items from reviewers' decisions, for ``smsguard train --with-reviews``.

The review queue is not built yet; training only needs something that yields ``(text, label)``
pairs, so that is the whole contract. :class:`JsonlReviewSource` reads an export of reviewer
decisions, one JSON object a line::

    {"text": "…", "label": 1}            # 1 = bad content (reviewer rejected), 0 = fine
    {"text": "…", "decision": "reject"}  # or the reviewer's decision: approve → 0, reject → 1

A malformed line is an error naming its line number; it is never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from engine import InputError

_DECISIONS = {"approve": 0, "approved": 0, "reject": 1, "rejected": 1}


@runtime_checkable
class ReviewLabelSource(Protocol):
    """Anything that yields reviewer-labelled messages as ``(text, label)``; label 1 = bad, 0 = fine."""

    def labels(self) -> Iterator[tuple[str, int]]: ...


class JsonlReviewSource:
    """Reviewer decisions exported as JSON lines (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def labels(self) -> Iterator[tuple[str, int]]:
        try:
            f = self.path.open(encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot read review labels: {e.strerror or e}", where=str(self.path)) from None
        with f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                yield _parse(line, f"{self.path}:{lineno}")


def _parse(line: str, where: str) -> tuple[str, int]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", where=where, code="reviews.json") from None
    if not isinstance(item, dict):
        raise InputError("expected a JSON object", where=where, code="reviews.schema")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError("'text' must be a non-empty string", where=where, code="reviews.schema")
    if "label" in item:
        label = item["label"]
        if label not in (0, 1) or isinstance(label, bool):
            raise InputError(f"'label' must be 0 or 1, not {label!r}", where=where, code="reviews.schema")
        return text, int(label)
    decision = item.get("decision")
    if isinstance(decision, str) and decision.lower() in _DECISIONS:
        return text, _DECISIONS[decision.lower()]
    raise InputError("expected 'label' (0/1) or 'decision' (approve/reject)", where=where, code="reviews.schema")
