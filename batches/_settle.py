"""Truthful batch states after the release: ``sending`` until every recipient has a final state, then ``done``.

The release worker moves a batch to ``sending`` once every recipient was handed to the outbox (or held back
by an opt-out, a cap, ...). The report relay then calls :func:`settle_batches`: a ``sending`` batch none of
whose recipients is still ``queued``, ``deferred`` or ``submitted`` becomes ``done`` (an audit event with the
final counts). A recipient whose receipt never comes gets the outcome ``unknown`` at its channel's receipt
deadline (``sending/_gateway_role.py``), so a batch always finishes.

:func:`waiting_for` says what an unfinished batch waits for (``channel`` when no gateway process is alive),
and :func:`reconciliation` lists every handed-over recipient without a final state and its age.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ._common import Context, now
from ._tables import batches, recipients

OPEN = ("queued", "deferred", "submitted")
"""Recipient statuses that may still change; every other one is final."""
SENDING = "sending"
HEARTBEAT_TTL = 5.0  # as sending/_gateway_role.py: a gateway process silent this long is gone


def settle_batches(ctx: Context, *, actor: str = "system:relay") -> list[int]:
    """Move every ``sending`` batch whose recipients are all final to ``done``; returns their ids."""
    from ._lifecycle import _transition
    from ._reading import status_counts

    with ctx.db.connect() as conn:
        ids = conn.execute(select(batches.c.id).where(batches.c.state == SENDING).order_by(batches.c.id)).scalars()
        ids = list(ids)
    settled = []
    for batch_id in ids:
        with ctx.db.begin() as conn:
            still_open = conn.execute(
                select(recipients.c.seq)
                .where(recipients.c.batch_id == batch_id, recipients.c.status.in_(OPEN))
                .limit(1)
            ).first()
            if still_open is not None:
                continue
            b = conn.execute(select(batches).where(batches.c.id == batch_id)).one()
            counts = status_counts(conn, batch_id)
            if _transition(conn, b, "done", actor, frm=(SENDING,), payload={"counts": counts}, done_at=now()):
                settled.append(batch_id)
    return settled


def gateways_alive(ctx: Context) -> int:
    """How many gateway processes sent a heartbeat in the last few seconds."""
    return int(ctx.redis.zcount(f"{ctx.send_namespace}:gateways", time.time() - HEARTBEAT_TTL, "+inf"))


def waiting_for(ctx: Context, state: str, counts: dict[str, int]) -> str | None:
    """What an unfinished, released batch waits for: ``channel`` (no gateway process is consuming the outbox),
    ``receipts`` (submitted, receipts outstanding) or ``None``."""
    if state not in ("releasing", SENDING) or not any(counts.get(s, 0) for s in ("queued", "submitted")):
        return None
    if gateways_alive(ctx) == 0:
        return "channel"
    return "receipts" if state == SENDING else None


def reconciliation(
    ctx: Context, *, tenant_id: int | None = None, older_than: float = 0.0, limit: int = 100, after: tuple[int, int]
    = (0, 0)
) -> dict[str, Any]:
    """Every recipient handed to the gateways (``submitted``) without a final state yet, oldest first, with its
    age in seconds and what Redis knows of it (channel, send state, parts); plus the total count."""
    t = now()
    q = (
        select(recipients.c.batch_id, recipients.c.seq, recipients.c.phone_masked, recipients.c.submitted_at)
        .where(recipients.c.status == "submitted")
    )
    total_q = select(func.count()).select_from(recipients).where(recipients.c.status == "submitted")
    if tenant_id is not None:
        owned = select(batches.c.id).where(batches.c.tenant_id == tenant_id)
        q = q.where(recipients.c.batch_id.in_(owned))
        total_q = total_q.where(recipients.c.batch_id.in_(owned))
    if older_than > 0:
        cutoff = datetime.fromtimestamp(t.timestamp() - older_than, t.tzinfo)
        q = q.where(recipients.c.submitted_at <= cutoff)
        total_q = total_q.where(recipients.c.submitted_at <= cutoff)
    b0, s0 = after
    q = q.where((recipients.c.batch_id > b0) | ((recipients.c.batch_id == b0) & (recipients.c.seq > s0)))
    q = q.order_by(recipients.c.batch_id, recipients.c.seq).limit(min(max(limit, 1), 1000))
    with ctx.db.connect() as conn:
        rows = conn.execute(q).all()
        total = conn.execute(total_q).scalar_one()
    from ._release import message_id

    pipe = ctx.redis.pipeline(transaction=False)
    for r in rows:
        pipe.hmget(f"{ctx.send_namespace}:msg:{message_id(r.batch_id, r.seq)}", "state", "gateway", "parts", "done")
    sent = pipe.execute() if rows else []
    items = []
    for r, (state, gateway, parts, done) in zip(rows, sent, strict=True):
        submitted = r.submitted_at if r.submitted_at is None or r.submitted_at.tzinfo else r.submitted_at.replace(
            tzinfo=t.tzinfo)
        items.append({
            "batch_id": r.batch_id,
            "seq": r.seq,
            "phone": r.phone_masked,
            "channel": gateway.decode() if gateway else None,
            "send_state": state.decode() if state else None,
            "parts": int(parts) if parts else None,
            "parts_reported": int(done) if done else 0,
            "submitted_at": submitted.isoformat() if submitted else None,
            "age_seconds": round((t - submitted).total_seconds(), 1) if submitted else None,
        })
    return {"total": total, "items": items}
