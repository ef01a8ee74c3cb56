"""Reading batches: the batch as the API shows it (counts, hold, cost), its recipients, the CSV report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ._common import Context, aware, now
from ._lifecycle import CANCELLABLE, _load, money
from ._tables import batch_contents, recipients


def _iso(dt: datetime | None) -> str | None:
    dt = aware(dt)
    return dt.isoformat() if dt else None


def status_counts(conn: Connection, batch_id: int) -> dict[str, int]:
    """How many recipients of the batch are in each status."""
    return dict(
        conn.execute(
            select(recipients.c.status, func.count())
            .where(recipients.c.batch_id == batch_id)
            .group_by(recipients.c.status)
        ).all()
    )


def hold_of(ctx: Context, b: Any, counts: dict[str, int]) -> dict[str, Any] | None:
    """Why a batch that is not cancelled waits, and until when: quiet hours (released batches keep their
    recipients ``deferred``; a scheduled one will be held as soon as it is due)."""
    from ._release import in_quiet_hours

    if b.state == "releasing" and b.resume_at is not None and counts.get("deferred"):
        return {"reason": "quiet_hours", "until": _iso(b.resume_at)}
    if b.state in ("approved", "scheduled"):
        due = max(aware(b.schedule_at) or now(), now())
        resume = in_quiet_hours(ctx.policy.batches.quiet_hours, b.kind, due)
        if resume is not None:
            return {"reason": "quiet_hours", "until": _iso(resume)}
    return None


def get_batch(ctx: Context, tenant_id: int | None, batch_id: int) -> dict[str, Any]:
    from ._settle import waiting_for

    with ctx.db.connect() as conn:
        b = _load(conn, tenant_id, batch_id)
        counts = status_counts(conn, batch_id)
        contents = conn.execute(
            select(
                batch_contents.c.content_id,
                batch_contents.c.content_hash,
                batch_contents.c.decision,
                batch_contents.c.review,
                batch_contents.c.segments,
                batch_contents.c.recipients,
                batch_contents.c.reason,
                batch_contents.c.review_category,
            )
            .where(batch_contents.c.batch_id == batch_id)
            .order_by(batch_contents.c.content_id)
            .limit(100)
        ).all()
    return {
        "id": b.id,
        "name": b.name,
        "state": b.state,
        "kind": b.kind,
        "signature": b.signature,
        "sender": b.sender,
        "template_id": b.template_id,
        "list_id": b.list_id,
        "schedule_at": _iso(b.schedule_at),
        "resume_at": _iso(b.resume_at),
        "total": b.total,
        "reason": b.reason,
        "estimate": money(b.estimate_micros),
        "currency": ctx.policy.prices.currency,
        "counts": {s: counts.get(s, 0) for s in sorted(counts)},
        "waiting_for": waiting_for(ctx, b.state, counts),
        "hold": hold_of(ctx, b, counts),
        "cancellable": b.state in CANCELLABLE or (b.state == "releasing" and b.lease_owner is None),
        # the human review of each content held for it: the reviewer's decision, reason and category
        "review": [
            {
                "content_id": c.content_id,
                "decision": c.review,
                "reason": c.reason if c.review != "pending" else None,
                "category": c.review_category,
            }
            for c in contents
            if c.review != "none"
        ],
        "contents": [
            {
                "content_id": c.content_id,
                "content_hash": c.content_hash,
                "decision": c.decision,
                "review": c.review,
                "segments": c.segments,
                "recipients": c.recipients,
                "reason": c.reason,
            }
            for c in contents
        ],
        "created_at": _iso(b.created_at),
        "released_at": _iso(b.released_at),
        "done_at": _iso(b.done_at),
    }


REPORT_COLUMNS = ("seq", "phone", "carrier", "status", "detail", "submitted_at", "final_at", "gateway", "carrier_code")


def list_recipients(
    ctx: Context, tenant_id: int, batch_id: int, *, status: str | None = None, after: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    with ctx.db.connect() as conn:
        _load(conn, tenant_id, batch_id)
        q = (
            select(recipients)
            .where(recipients.c.batch_id == batch_id, recipients.c.seq > after)
            .order_by(recipients.c.seq)
            .limit(min(max(limit, 1), 1000))
        )
        if status:
            q = q.where(recipients.c.status == status)
        return [_recipient(r) for r in conn.execute(q)]


def _recipient(r: Any) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "phone": r.phone_masked,
        "carrier": r.carrier,
        "status": r.status,
        "detail": r.detail,
        "submitted_at": _iso(r.submitted_at),
        "final_at": _iso(r.final_at),
        "gateway": r.gateway,
        "carrier_code": r.carrier_code,
    }


def report_csv(ctx: Context, tenant_id: int, batch_id: int) -> Iterator[str]:
    """Every recipient of a batch (masked numbers), streamed as CSV text chunks."""
    from ._contacts import _csv_line

    with ctx.db.connect() as conn:
        _load(conn, tenant_id, batch_id)
    yield ",".join(REPORT_COLUMNS) + "\r\n"
    with ctx.db.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(
            select(recipients).where(recipients.c.batch_id == batch_id).order_by(recipients.c.seq)
        )
        for part in result.partitions():
            yield "".join(_csv_line([_recipient(r)[c] for c in REPORT_COLUMNS]) for r in part)
