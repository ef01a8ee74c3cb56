"""Labelled items from reviewers' decisions, for ``smsguard train --with-reviews``.

Training only needs something that yields ``(text, label)`` pairs, so that is the whole contract.
``smsguard train --with-reviews`` (no file) reads the decided review items straight from SQL
(:func:`sql_source`: ``review.SqlReviewLabelSource`` over ``review_labels``);
``smsguard train --export-reviews FILE`` writes the same labels as JSON lines (:func:`export_jsonl`), the
format :class:`JsonlReviewSource` reads back, one JSON object a line::

    {"text": "…", "label": 1}            # 1 = bad content (reviewer rejected), 0 = fine
    {"text": "…", "decision": "reject"}  # or the reviewer's decision: approve → 0, reject → 1

A malformed line is an error naming its line number; it is never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from smsguard.core import InputError

if TYPE_CHECKING:
    from sqlalchemy import Engine

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


def sql_source(db: Engine, *, tenant_id: int | None = None) -> ReviewLabelSource:
    """Every final reviewer decision in SQL (approved → 0, rejected → 1), oldest first."""
    from smsguard.review import SqlReviewLabelSource

    return SqlReviewLabelSource(db, tenant_id=tenant_id)


def export_jsonl(source: ReviewLabelSource, path: Path) -> int:
    """Write ``source``'s labels to ``path`` as ``{"text", "label"}`` lines (temp file, then renamed);
    returns how many. Phone numbers stay as the reviewers saw them: the file is training data, keep it so."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for text, label in source.labels():
                f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
                count += 1
        tmp.replace(path)
    except OSError as e:
        raise InputError(f"cannot write review labels: {e.strerror or e}", where=str(path),
                         code="reviews.export") from None
    return count


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
