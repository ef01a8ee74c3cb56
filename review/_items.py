"""Putting items into review (``submit``) and what a final decision hands to its source (``Decision``).

``submit`` only writes SQL, inside the caller's transaction: the item becomes visible to reviewers when
the dispatcher (``review._queue.Queue.dispatch``, run by the app every second and before every claim) adds
it to the Redis stream. So a batch that submits items and then rolls back leaves nothing behind, and an
item that committed is never lost even if Redis is down at that moment.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smsguard.engine import normalizer
from smsguard.phones import mask

from ._audit import emit
from ._config import ReviewConfig, load_review_config
from ._tables import OPEN_STATUSES, review_items

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}
MAX_SAMPLE_RECIPIENTS = 5


@dataclass(frozen=True, slots=True)
class Decision:
    """The final human decision on an item, handed to its source's handler inside the deciding transaction."""

    item_id: int
    source: str
    source_ref: str
    tenant_id: int
    approved: bool
    reason: str | None
    deciders: list[str]
    category: str | None = None
    decided_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    reason_code: str | None = None
    """The canned reason's code (policy.yaml ``review.reasons``); ``reason`` is then its label plus free text."""


DecisionHandler = Callable[[Connection, Decision], None]
_handlers: dict[str, DecisionHandler] = {}
_handlers_lock = threading.Lock()


def register_decision_handler(source: str, handler: DecisionHandler) -> None:
    """Call ``handler(conn, decision)`` for every final decision on an item of ``source``.

    It runs INSIDE the transaction that records the decision: whatever it writes (releasing or cancelling a
    batch) commits atomically with the decision, and an exception it raises rolls the decision back (the
    reviewer sees an error and the item stays open). Registering a source again replaces its handler."""
    with _handlers_lock:
        _handlers[source] = handler


# Sources whose handlers live in a package that registers them on import: a process that decides an item
# (say a CLI or a worker that never imported that package) imports it first, so no decision skips its handler.
_HANDLER_MODULES = {"batch_content": "smsguard.batches", "template": "smsguard.batches",
                    "template_version": "smsguard.batches", "signature": "smsguard.filing"}


def decision_handler(source: str) -> DecisionHandler | None:
    if source not in _handlers and source in _HANDLER_MODULES:
        importlib.import_module(_HANDLER_MODULES[source])
    return _handlers.get(source)


def content_hash(text: str) -> str:
    """Identical content, whatever its source: the key of bulk decisions and exact-duplicate look-ups."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def summarize_verdict(verdict: Mapping[str, Any]) -> tuple[str, str, float]:
    """(category, severity, score) of a verdict, for filters and the four-eyes rule: the category of the
    reason that sent it to review (else the worst reason, else the classifier's category)."""
    reasons = [r for r in verdict.get("reasons") or [] if isinstance(r, Mapping)]
    severity = "low"
    for r in reasons:
        if SEVERITY_RANK.get(str(r.get("severity")), 0) > SEVERITY_RANK.get(severity, 0):
            severity = str(r.get("severity"))
    category = None
    for r in reasons:
        if r.get("action") == "review":
            category = r.get("category")
            break
    if category is None and reasons:
        category = max(reasons, key=lambda r: SEVERITY_RANK.get(str(r.get("severity")), 0)).get("category")
    classifier = verdict.get("classifier") or {}
    if category is None and isinstance(classifier, Mapping):
        category = classifier.get("category")
    try:
        score = float(verdict.get("score") or 0.0)
    except (TypeError, ValueError):
        score = 0.0
    return str(category or "none")[:32], severity, score


def submit(
    conn: Connection,
    *,
    tenant_id: int,
    source: str,
    source_ref: str,
    text: str,
    verdict: Mapping[str, Any],
    priority: int = 0,
    batch_size: int = 0,
    sample_recipients: Sequence[str] = (),
    config: ReviewConfig | None = None,
) -> int:
    """Put ``text`` (screened as ``verdict``) into human review and return the item's id.

    Runs inside the caller's transaction. Idempotent on ``(source, source_ref)``: a second submit returns
    the existing item's id and changes nothing. Sample recipients are masked before they are stored."""
    if not source or len(source) > 32:
        raise ValueError("source: 1-32 characters")
    if not source_ref or len(source_ref) > 200:
        raise ValueError("source_ref: 1-200 characters")
    config = config or load_review_config()
    category, severity, score = summarize_verdict(verdict)
    values = {
        "tenant_id": tenant_id,
        "source": source,
        "source_ref": source_ref,
        "text": text,
        "search_text": normalizer().fold(text),
        "content_hash": content_hash(text),
        "verdict": json.dumps(verdict, ensure_ascii=False, default=str),
        "category": category,
        "severity": severity,
        "score": score,
        "priority": int(priority),
        "batch_size": int(batch_size),
        "sample_recipients": json.dumps([mask(str(n)) for n in list(sample_recipients)[:MAX_SAMPLE_RECIPIENTS]]),
        "required_approvals": config.required_approvals(severity, int(batch_size)),
        "status": "pending",
        "version": 1,
        "created_at": datetime.now(UTC),
    }
    # ON CONFLICT DO NOTHING instead of SELECT-then-INSERT: two transactions submitting the same ref at once
    # must both end up with the one row (a savepoint would do too, but pysqlite's savepoints are unreliable).
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(
        dialect.insert(review_items).values(**values).on_conflict_do_nothing(index_elements=["source", "source_ref"])
    )
    return int(
        conn.execute(
            select(review_items.c.id).where(review_items.c.source == source, review_items.c.source_ref == source_ref)
        ).scalar_one()
    )


def submit_api_verdicts(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Screening-API verdict rows (storage ``VERDICT_COLUMNS`` order) that answered ``review`` each become an
    item of source ``"api"`` (source_ref = the verdict id). Called by the API's verdict writer inside the
    transaction that stores the rows, so an uncertain verdict never exists without its review item."""
    for r in rows:
        if r[5] == "review":
            submit(conn, tenant_id=r[1], source="api", source_ref=r[0], text=r[11], verdict=json.loads(r[12]))


def settle(conn: Connection, *, source: str, source_ref: str, approved: bool, reason: str | None,
           actor: str) -> list[int]:
    """The source decided the matter on its own page (a signature application decided on
    ``/review/signatures``): its open review items for ``source_ref`` (or a resubmission of it, ``<ref>:<n>``)
    are closed with that decision, in the
    caller's transaction, without calling the source's handler again. Returns the ids closed."""
    c = review_items.c
    rows = conn.execute(
        select(c.id, c.version, c.tenant_id).where(
            c.source == source, or_(c.source_ref == source_ref, c.source_ref.like(f"{source_ref}:%")),
            c.status.in_(OPEN_STATUSES))
    ).all()
    status = "approved" if approved else "rejected"
    t = datetime.now(UTC)
    for r in rows:
        conn.execute(update(review_items).where(c.id == r.id, c.version == r.version).values(
            status=status, version=r.version + 1, decided_at=t, decision_reason=reason, release_at=None,
            undo_status=None))
        emit(conn, event_type="review.settled", actor=actor, tenant_id=r.tenant_id, subject=f"review:{r.id}",
             payload={"status": status, "source": source, "source_ref": source_ref})
    return [r.id for r in rows]
