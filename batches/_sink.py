"""The gateway layer's ``EventSink``: delivery reports to recipient status, MO replies to opt-out handling.

``sending.EventRelay`` acknowledges an event only after ``on_report`` / ``on_inbound`` returned, and these
return only after their SQL transaction committed, so an event is never lost; a crash in between makes
the relay hand it over again, and both handlers tolerate that repeat:

* a report updates a recipient only while it is ``queued`` or ``submitted`` (a later repeat, or a stale
  report after a final one, changes nothing). ``queued`` is accepted because a fast receipt can overtake
  the release worker's own SQL record of the hand-over; the worker then finds the recipient no longer
  queued and leaves it alone. The gateway's message ids and the carrier's code are stored with the
  status, so SQL, not Redis, is the record of what happened;
* an MO opt-out is an upsert (idempotent); the MO log may hold a repeated line, never a repeated effect.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from sqlalchemy import update

from sending import DeliveryReport, InboundMessage

from . import _optouts
from ._common import Context, now
from ._phones import InvalidPhone
from ._release import parse_message_id
from ._tables import recipients

log = logging.getLogger("smsguard.sink")

STATUS_OF_REPORT = {
    "delivered": "delivered",
    "failed": "failed",
    "rejected": "failed",
    "expired": "expired",
    "unknown": "unknown",
}


def apply_report(ctx: Context, report: DeliveryReport) -> bool:
    """Write one delivery report to its recipient; False when it is not ours or changed nothing (a repeat)."""
    ids = parse_message_id(report.message_id)
    if ids is None:
        log.warning("delivery report for a message id that is not a batch recipient: %r", report.message_id)
        return False
    status = STATUS_OF_REPORT.get(report.status, "unknown")
    with ctx.db.begin() as conn:
        done = conn.execute(
            update(recipients)
            .where(
                recipients.c.batch_id == ids[0],
                recipients.c.seq == ids[1],
                recipients.c.status.in_(("queued", "submitted")),
            )
            .values(
                status=status,
                final_at=now(),
                gateway=report.gateway[:64] or None,
                gateway_ids=",".join(report.gateway_ids)[:2000] or None,
                carrier_code=(report.carrier_code or None) and report.carrier_code[:64],
                detail=None if status == "delivered" else f"{report.status}: {report.carrier_code}"[:500],
            )
        ).rowcount
    return bool(done)


def apply_inbound(ctx: Context, message: InboundMessage) -> dict[str, Any] | None:
    try:
        return _optouts.handle_mo(
            ctx,
            phone_raw=message.phone,
            text=message.text,
            to=message.to,
            gateway=message.gateway or "gateway",
            actor=f"system:gateway:{message.gateway}",
        )
    except InvalidPhone:
        log.warning("MO from an invalid number ignored (gateway %s)", message.gateway)
        return None


class SqlEventSink:
    """``sending.EventSink`` over SQL: plug it into ``sending.EventRelay(store, SqlEventSink(ctx))``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def on_report(self, report: DeliveryReport) -> None:
        await anyio.to_thread.run_sync(apply_report, self.ctx, report)

    async def on_inbound(self, message: InboundMessage) -> None:
        await anyio.to_thread.run_sync(apply_inbound, self.ctx, message)
