"""Labelled items from reviewers' decisions, for ``smsguard train --with-reviews``.

Training only needs something that yields ``(text, label)`` pairs, so that is the whole contract.
``smsguard train --with-reviews`` (no file) reads the decided review items straight from SQL
(:func:`sql_source`: ``review.SqlReviewLabelSource`` over ``review_labels``);
``smsguard review export-labels [--out FILE]`` (or ``smsguard train --export-reviews FILE``) writes the same
labels as JSON lines (:func:`export_jsonl`), the format :class:`JsonlReviewSource` reads back, one JSON object
a line::

    {"text": "…", "label": 1, "category": "fraud"}  # 1 = bad content (reviewer rejected), 0 = fine
    {"text": "…", "decision": "reject"}  # or the reviewer's decision: approve → 0, reject → 1

A malformed line is an error naming its line number; it is never skipped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO, runtime_checkable

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


def export_jsonl(source: ReviewLabelSource, path: Path | None) -> int:
    """Write ``source``'s labels to ``path`` (``None``: stdout) as ``{"text", "label"}`` lines, with the
    reviewer's ``category`` when the source knows it (SQL does); returns how many. A file is written to a temp
    file, then renamed. Phone numbers stay as the reviewers saw them: the file is training data, keep it so."""
    rows = (
        source.labels_with_category()
        if hasattr(source, "labels_with_category")
        else ((t, label, None) for t, label in source.labels())
    )

    def write(f: TextIO) -> int:
        count = 0
        for text, label, category in rows:
            item: dict[str, object] = {"text": text, "label": label}
            if category is not None:
                item["category"] = category
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
            count += 1
        return count

    if path is None:
        return write(sys.stdout)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            count = write(f)
        tmp.replace(path)
    except OSError as e:
        raise InputError(
            f"cannot write review labels: {e.strerror or e}", where=str(path), code="reviews.export"
        ) from None
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
