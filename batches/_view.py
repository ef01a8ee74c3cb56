"""One recipient seen as a message: what ``smsguard.messages`` (the single-send API) reads of a batch.

A single message is a one-recipient batch, so its state is the recipient's status once the release has
decided it (``submitted``, ``delivered``, ``opted_out``, ``capped``, ``rejected``, …) and, before that, what
the batch is waiting for. The state is one SQL expression, so a list can be filtered by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, case, or_, select, update

from smsguard.core import InputError

from ._common import Context
from ._tables import batch_contents, batches, recipients

MESSAGE_STATES = (
    "draft", "screening", "review", "scheduled", "queued", "deferred", "submitted", "delivered", "failed",
    "expired", "unknown", "rejected", "cancelled", "opted_out", "capped", "invalid",
)
RECORD_STATES = (*MESSAGE_STATES, "refused")
"""A recipient's states in the send records (``refused``: the channel refused it before hand-over)."""


def message_view() -> Select:
    """A SELECT of every batch's first recipient (seq 1) with its batch and content, and a ``state`` column;
    its ``batch_id`` column is the batch's id (a batch not yet submitted has no recipient: NULL columns)."""
    r, b, c = recipients.c, batches.c, batch_contents.c
    state = case(
        (and_(r.status.is_not(None), r.status != "queued"), r.status),
        (b.state.in_(("draft",)), "draft"),
        (b.state.in_(("screening",)), "screening"),
        (b.state == "review", "review"),
        (b.state.in_(("approved", "scheduled")), "scheduled"),
        (b.state == "cancelled", "cancelled"),
        else_="queued",
    )
    return select(
        b.id.label("batch_id"), b.tenant_id, b.state.label("batch_state"), b.reason.label("batch_reason"),
        b.schedule_at, b.estimate_micros, b.reserved_micros, r.status, r.detail, r.carrier, r.submitted_at,
        r.final_at, r.gateway, r.carrier_code, c.decision, c.review, c.reason, c.verdict, c.segments,
        c.cost_micros, c.text, state.label("state"),
    ).select_from(
        batches.outerjoin(recipients, and_(r.batch_id == b.id, r.seq == 1)).outerjoin(
            batch_contents, and_(c.batch_id == b.id, c.content_id == r.content_id)
        )
    )


REDACTED = "●"


def seal_secret(conn: Connection, ctx: Context, batch_id: int, secret: str) -> None:
    """In ``conn``'s transaction: ``secret`` (a verification code in the batch's text) is kept sealed with the
    phone vault's key, so that ``drop_handed_secrets`` can take it out of the text once the message is handed over."""
    conn.execute(update(batches).where(batches.c.id == batch_id).values(secret_enc=ctx.vault.encrypt(secret)))


def drop_handed_secrets(conn: Connection, ctx: Context, batch_ids: Iterable[int]) -> int:
    """In ``conn``'s transaction (the one recording that the gateway took a message, or its report): the sealed
    secret of each of these batches leaves its stored text (``●`` instead) and is forgotten; SQL no longer needs
    it (a re-drive of a handed-over message re-sends nothing). Returns how many batches changed."""
    ids = sorted(set(batch_ids))
    if not ids:
        return 0
    rows = conn.execute(select(batches.c.id, batches.c.content, batches.c.secret_enc)
                        .where(batches.c.id.in_(ids), batches.c.secret_enc.is_not(None))).all()
    for row in rows:
        secret = ctx.vault.decrypt(row.secret_enc)
        values: dict[str, Any] = {"secret_enc": None}
        if secret and row.content and secret in row.content:
            values["content"] = row.content.replace(secret, REDACTED * len(secret))
        conn.execute(update(batches).where(batches.c.id == row.id).values(**values))
        if not secret:
            continue
        for cid, text in conn.execute(select(batch_contents.c.content_id, batch_contents.c.text)
                                      .where(batch_contents.c.batch_id == row.id)).all():
            if secret in text:
                conn.execute(update(batch_contents)
                             .where(batch_contents.c.batch_id == row.id, batch_contents.c.content_id == cid)
                             .values(text=text.replace(secret, REDACTED * len(secret))))
    return len(rows)


def redact_text(ctx: Context, batch_id: int, secret: str, replacement: str) -> int:
    """Replace ``secret`` in a batch's stored text (a verification code once it is used up or expired): the
    message was handed over, so SQL no longer needs it. Returns how many rows changed."""
    n = 0
    with ctx.db.begin() as conn:
        row = conn.execute(select(batches.c.content).where(batches.c.id == batch_id)).one_or_none()
        if row is not None and row.content and secret in row.content:
            n += conn.execute(update(batches).where(batches.c.id == batch_id)
                              .values(content=row.content.replace(secret, replacement))).rowcount
        for cid, text in conn.execute(select(batch_contents.c.content_id, batch_contents.c.text)
                                      .where(batch_contents.c.batch_id == batch_id)).all():
            if secret in text:
                n += conn.execute(update(batch_contents).where(batch_contents.c.batch_id == batch_id,
                                                               batch_contents.c.content_id == cid)
                                  .values(text=text.replace(secret, replacement))).rowcount
    return n


RECORD_PAGE_MAX = 200


def _recipient_state(status: Any = None) -> Any:
    """A recipient's state as ``message_view`` gives it, for every recipient of a batch (not only the first);
    ``status`` is the recipients' status column, or another table's copy of it (``recipient_rollup``)."""
    b = batches.c
    status = recipients.c.status if status is None else status
    return case(
        (status != "queued", status),
        (b.state == "draft", "draft"),
        (b.state == "screening", "screening"),
        (b.state == "review", "review"),
        (b.state.in_(("approved", "scheduled")), "scheduled"),
        (b.state == "cancelled", "cancelled"),
        else_="queued",
    )


def search_recipients(
    ctx: Context,
    tenant_id: int,
    *,
    phone_hash: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    state: str | None = None,
    batch_id: int | None = None,
    before: tuple[int, int] | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Send records: every recipient of the tenant's batches (a single message is a one-recipient batch), newest
    first, by number (its keyed hash: the caller hashes it), ``since`` ≤ the batch's creation < ``until``, state
    and batch. ``before`` is the cursor (batch id, seq) of the next page; ``next_before`` gives it."""
    if state is not None and state not in RECORD_STATES:
        raise InputError(f"state must be one of {', '.join(RECORD_STATES)}", where="query state",
                         code="records.state")
    r, b = recipients.c, batches.c
    st = _recipient_state().label("state")
    q = (
        select(r.batch_id, r.seq, r.phone_masked, r.carrier, r.status, r.detail, r.submitted_at, r.final_at,
               r.carrier_code, b.name, b.kind, b.signature, b.created_at, st)
        .select_from(recipients.join(batches, b.id == r.batch_id))
        .where(b.tenant_id == tenant_id)
    )
    if phone_hash is not None:
        q = q.where(r.phone_hash == phone_hash)
    if since is not None:
        q = q.where(b.created_at >= since.astimezone(UTC))
    if until is not None:
        q = q.where(b.created_at < until.astimezone(UTC))
    if state is not None:
        q = q.where(_recipient_state() == state)
    if batch_id is not None:
        q = q.where(r.batch_id == batch_id)
    if before is not None:
        q = q.where(or_(r.batch_id < before[0], and_(r.batch_id == before[0], r.seq < before[1])))
    limit = min(max(limit, 1), RECORD_PAGE_MAX)
    with ctx.db.connect() as conn:
        rows = conn.execute(q.order_by(r.batch_id.desc(), r.seq.desc()).limit(limit + 1)).all()
    page = [{
        "batch_id": x.batch_id, "seq": x.seq, "phone": x.phone_masked, "carrier": x.carrier, "state": x.state,
        "detail": x.detail, "carrier_code": x.carrier_code, "batch_name": x.name, "kind": x.kind,
        "signature": x.signature, "created_at": _aware(x.created_at), "submitted_at": _aware(x.submitted_at),
        "final_at": _aware(x.final_at),
    } for x in rows[:limit]]
    nxt = (page[-1]["batch_id"], page[-1]["seq"]) if len(rows) > limit else None
    return {"records": page, "next_before": nxt}


def _aware(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=UTC)
