"""One recipient seen as a message: what ``smsguard.messages`` (the single-send API) reads of a batch.

A single message is a one-recipient batch, so its state is the recipient's status once the release has
decided it (``submitted``, ``delivered``, ``opted_out``, ``capped``, ``rejected``, …) and, before that, what
the batch is waiting for. The state is one SQL expression, so a list can be filtered by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Select, and_, case, select, update

from ._common import Context
from ._tables import batch_contents, batches, recipients

MESSAGE_STATES = (
    "draft", "screening", "review", "scheduled", "queued", "deferred", "submitted", "delivered", "failed",
    "expired", "unknown", "rejected", "cancelled", "opted_out", "capped", "invalid",
)


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
