"""Review decisions on a batch's contents: a rejected content's recipients become ``rejected`` and the batch
goes on with the others; once every content is decided it is scheduled, or ``cancelled`` when nothing
sendable is left (with the reviewer's reasons)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update

from smsguard import audit

from ._common import now
from ._lifecycle import SENDABLE_REVIEW, _load, _transition
from ._tables import batch_contents, batches, recipients


def _after_decisions(conn: Connection, batch: Any, actor: str) -> None:
    """Every content is decided: schedule what is sendable, or cancel when nothing is."""
    pending = conn.execute(
        select(func.count())
        .select_from(batch_contents)
        .where(batch_contents.c.batch_id == batch.id, batch_contents.c.review == "pending")
    ).scalar_one()
    if pending:
        return
    sendable, estimate = conn.execute(
        select(
            func.coalesce(func.sum(batch_contents.c.recipients), 0),
            func.coalesce(func.sum(batch_contents.c.cost_micros), 0),
        ).where(
            batch_contents.c.batch_id == batch.id,
            batch_contents.c.decision != "block",
            batch_contents.c.review.in_(SENDABLE_REVIEW),
        )
    ).one()
    if not sendable:
        # the reviewer's own words reach the customer, not only "nothing to send"
        rejected = [
            r for (r,) in conn.execute(
                select(batch_contents.c.reason).where(
                    batch_contents.c.batch_id == batch.id, batch_contents.c.review == "rejected"
                ).order_by(batch_contents.c.content_id).limit(5)
            ) if r
        ]
        _transition(
            conn,
            batch,
            "cancelled",
            actor,
            frm=("screening", "review"),
            reason=("rejected in review: " + "; ".join(dict.fromkeys(rejected)))[:2000] if rejected
            else "nothing to send: every content was blocked or rejected",
        )
        conn.execute(
            update(recipients)
            .where(recipients.c.batch_id == batch.id, recipients.c.status == "queued")
            .values(status="cancelled")
        )
        return
    if _transition(conn, batch, "approved", actor, frm=("screening", "review"), estimate_micros=int(estimate)):
        batch = _load(conn, None, batch.id)
        _transition(conn, batch, "scheduled", actor, frm=("approved",), schedule_at=batch.schedule_at or now())


def on_content_decision(conn: Connection, decision: Any) -> None:
    """Review handler (source ``batch_content``), inside the decision's transaction."""
    batch_id_s, _, h = decision.source_ref.partition(":")
    batch = conn.execute(select(batches).where(batches.c.id == int(batch_id_s))).one_or_none()
    if batch is None:
        return
    row = conn.execute(
        select(batch_contents.c.content_id, batch_contents.c.review).where(
            batch_contents.c.batch_id == batch.id, batch_contents.c.content_hash == h
        )
    ).one_or_none()
    if row is None or row.review != "pending":
        return  # decided before (a repeat): nothing changes
    actor = f"user:{decision.deciders[-1]}" if getattr(decision, "deciders", None) else "system:review"
    conn.execute(
        update(batch_contents)
        .where(batch_contents.c.batch_id == batch.id, batch_contents.c.content_id == row.content_id)
        .values(review="approved" if decision.approved else "rejected", reason=decision.reason,
                review_category=(decision.category or None) and str(decision.category)[:32])
    )
    if not decision.approved:
        conn.execute(
            update(recipients)
            .where(
                recipients.c.batch_id == batch.id,
                recipients.c.content_id == row.content_id,
                recipients.c.status == "queued",
            )
            .values(status="rejected", detail=f"rejected in review: {decision.reason or ''}"[:500])
        )
    audit.append(
        conn,
        event_type="batch.content_decided",
        actor=actor,
        tenant_id=batch.tenant_id,
        subject=f"batch:{batch.id}",
        payload={
            "batch_id": batch.id,
            "content_hash": h,
            "approved": bool(decision.approved),
            "reason": decision.reason,
            "category": decision.category,
        },
    )
    if batch.state == "review":
        _after_decisions(conn, batch, actor)
