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
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.exc import SQLAlchemyError

from smsguard import webhooks
from smsguard.phones import InvalidPhone
from smsguard.sending import DeliveryReport, InboundMessage, SentReport

from . import _billing, _optouts
from ._common import Context, now
from ._release import message_id, parse_message_id
from ._tables import batches, recipients
from ._view import drop_handed_secrets

log = logging.getLogger("smsguard.sink")

STATUS_OF_REPORT = {
    "delivered": "delivered",
    "failed": "failed",
    "rejected": "failed",
    "expired": "expired",
    "unknown": "unknown",
}


# not IN (...): an expanding parameter cannot be used with executemany
_OPEN = (recipients.c.status == "queued") | (recipients.c.status == "submitted")

_REPORT = (
    update(recipients)
    .where(recipients.c.batch_id == bindparam("b"), recipients.c.seq == bindparam("s"), _OPEN)
    .values(
        status=bindparam("st"), final_at=bindparam("at"), gateway=bindparam("gw"), gateway_ids=bindparam("ids"),
        carrier_code=bindparam("cc"), detail=bindparam("dt"),
    )
)
_SENT = (
    update(recipients)
    .where(recipients.c.batch_id == bindparam("b"), recipients.c.seq == bindparam("s"), _OPEN)
    .values(gateway=bindparam("gw"), gateway_ids=bindparam("ids"))
)


def _report_row(report: DeliveryReport) -> dict[str, Any] | None:
    ids = parse_message_id(report.message_id)
    if ids is None:
        log.warning("delivery report for a message id that is not a batch recipient: %r", report.message_id)
        return None
    status = STATUS_OF_REPORT.get(report.status, "unknown")
    return {
        "b": ids[0], "s": ids[1], "st": status, "at": now(), "gw": report.gateway[:64] or None,
        "ids": ",".join(report.gateway_ids)[:2000] or None,
        "cc": (report.carrier_code or None) and report.carrier_code[:64],
        "dt": None if status == "delivered" else f"{report.status}: {report.carrier_code}"[:500],
    }


def _sent_row(report: SentReport) -> dict[str, Any] | None:
    ids = parse_message_id(report.message_id)
    if ids is None:
        return None
    return {"b": ids[0], "s": ids[1], "gw": report.gateway[:64] or None,
            "ids": ",".join(report.gateway_ids)[:2000] or None}


def _announce(conn: Any, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """Before the reports are written: the recipients they will change (still open), each with its tenant, get
    a ``message.delivered`` / ``message.failed`` event in this transaction. On PostgreSQL the rows are locked,
    so two relays handing over the same report announce it once."""
    if not rows:
        return []
    keys = [(r["b"], r["s"]) for r in rows]
    found: dict[tuple[int, int], Any] = {}
    for i in range(0, len(keys), 500):
        q = (select(recipients.c.batch_id, recipients.c.seq, recipients.c.phone_masked, recipients.c.submitted_at,
                    batches.c.tenant_id)
             .join(batches, batches.c.id == recipients.c.batch_id)
             .where(tuple_(recipients.c.batch_id, recipients.c.seq).in_(keys[i : i + 500]), _OPEN))
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(of=recipients)
        found.update({(f.batch_id, f.seq): f for f in conn.execute(q)})
    changing = []
    seen: dict[int, list[Any]] = {}  # each tenant's webhook endpoints, read once for the whole batch
    for r in rows:
        f = found.pop((r["b"], r["s"]), None)
        if f is None:  # a repeat, or not ours
            continue
        changing.append((r, f))
        mid = message_id(r["b"], r["s"])
        kind = "message.delivered" if r["st"] == "delivered" else "message.failed"
        webhooks.emit(conn, tenant_id=f.tenant_id, event_type=kind, subject=f"message:{mid}",
                      payload={"message_id": mid, "batch_id": r["b"], "seq": r["s"], "phone": f.phone_masked,
                               "status": r["st"], "carrier_code": r["cc"], "gateway": r["gw"], "detail": r["dt"],
                               "reported_at": r["at"].isoformat()}, endpoints_seen=seen)
    # prepaid: charged on delivery, or refunded when refused before the carrier (batches/_billing.py)
    _billing.bill_reports(conn, changing, "system:relay")
    return changing


def _drop_secrets(ctx: Context, batch_ids: list[int]) -> None:
    """Once the gateway's record of taking them is committed: a verification code leaves these batches' stored
    text. Its own transaction, after the relay's (the batches row is not locked while recipients are, which the
    release worker locks the other way round). Best effort: if it fails, the message's next record (its delivery
    report) tries again, and the code's use or expiry redacts it anyway."""
    try:
        with ctx.db.begin() as conn:
            drop_handed_secrets(conn, ctx, batch_ids)
    except SQLAlchemyError as e:
        log.warning("a handed-over verification code stays in SQL until the next report: %s", e)


def apply_outcomes(ctx: Context, events: Sequence[DeliveryReport | SentReport]) -> int:
    """Write many reports and sent records in ONE transaction (the relay's batches: it keeps up with the
    gateways, so little is only in Redis when Redis loses its data). Sent records first: a report of the
    same message then overrides them. Returns the rows changed."""
    sent = [r for r in (_sent_row(e) for e in events if isinstance(e, SentReport)) if r]
    reports = [r for r in (_report_row(e) for e in events if isinstance(e, DeliveryReport)) if r]
    changed = 0
    with ctx.db.begin() as conn:
        _announce(conn, reports)
        for stmt, rows in ((_SENT, sent), (_REPORT, reports)):
            if rows:
                changed += conn.execute(stmt, rows).rowcount
    _drop_secrets(ctx, [r["b"] for r in (*sent, *reports)])
    return changed


def apply_report(ctx: Context, report: DeliveryReport) -> bool:
    """Write one delivery report to its recipient; False when it is not ours or changed nothing (a repeat)."""
    row = _report_row(report)
    if row is None:
        return False
    with ctx.db.begin() as conn:
        _announce(conn, [row])
        changed = bool(conn.execute(_REPORT, row).rowcount)
    _drop_secrets(ctx, [row["b"]])
    return changed


def apply_sent(ctx: Context, report: SentReport) -> bool:
    """Record that the gateway took a recipient's message (its gateway ids): a Redis that loses the send
    state later re-drives it as submitted, never as a second send. Changes nothing once final."""
    row = _sent_row(report)
    if row is None:
        return False
    with ctx.db.begin() as conn:
        changed = bool(conn.execute(_SENT, row).rowcount)
    _drop_secrets(ctx, [row["b"]])
    return changed


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


def sent_before(ctx: Context, message_ids: Sequence[str]) -> dict[str, SentReport]:
    """Of ``message_ids``, the recipients SQL records a gateway as having taken (their gateway ids)."""
    keys = [k for k in (parse_message_id(m) for m in message_ids) if k is not None]
    found: dict[str, SentReport] = {}
    with ctx.db.connect() as conn:
        for i in range(0, len(keys), 500):
            rows = conn.execute(
                select(recipients.c.batch_id, recipients.c.seq, recipients.c.gateway, recipients.c.gateway_ids)
                .where(tuple_(recipients.c.batch_id, recipients.c.seq).in_(keys[i : i + 500]),
                       recipients.c.gateway_ids.is_not(None))
            )
            for r in rows:
                mid = message_id(r.batch_id, r.seq)
                found[mid] = SentReport(mid, r.gateway or "", tuple(x for x in r.gateway_ids.split(",") if x))
    return found


class SqlSentJournal:
    """``sending.SentJournal`` over the recipients' rows: a gateway worker records there what the peer took
    before it acknowledges the outbox entry, so a Redis that loses its data never makes it a second send."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def record_sent(self, reports: Sequence[SentReport]) -> None:
        await anyio.to_thread.run_sync(apply_outcomes, self.ctx, reports)

    async def sent_before(self, message_ids: Sequence[str]) -> dict[str, SentReport]:
        return await anyio.to_thread.run_sync(sent_before, self.ctx, message_ids)


class SqlEventSink:
    """``sending.EventSink`` over SQL: plug it into ``sending.EventRelay(store, SqlEventSink(ctx))``."""

    report_phones = False  # a report's row is found by its message id; webhooks show SQL's masked number

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def on_report(self, report: DeliveryReport) -> None:
        await anyio.to_thread.run_sync(apply_report, self.ctx, report)

    async def on_inbound(self, message: InboundMessage) -> None:
        await anyio.to_thread.run_sync(apply_inbound, self.ctx, message)

    async def on_sent(self, report: SentReport) -> None:
        await anyio.to_thread.run_sync(apply_sent, self.ctx, report)

    async def on_outcomes(self, events: Sequence[DeliveryReport | SentReport]) -> None:
        await anyio.to_thread.run_sync(apply_outcomes, self.ctx, events)
