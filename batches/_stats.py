"""The statistics the console charts (issue 19 point 3): a tenant's recipients per batch and state with their
cost, and its failures by carrier and code, since a time.

Both read ``recipient_rollup`` (counts per batch × status × carrier × failure code, kept by triggers on
``recipients`` in the transaction of every change, migration consolestats_0001), so a chart over a million
recipients reads a few rows per batch instead of every recipient. ``*_scan`` compute the same from the recipients
themselves: the reference the tests compare the rollup with, and the baseline of ``bench/console_stats.py``.

A recipient's cost is its content's cost divided among the content's recipients, counted once it reached a carrier
(``HANDED_OVER``; the others are refunded or never held).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select

from ._common import Context
from ._tables import batch_contents, batches, recipient_rollup, recipients
from ._view import _aware, _recipient_state

HANDED_OVER = ("submitted", "delivered", "failed", "expired", "unknown")
"""Recipients that reached a carrier: what a send costs (the others are refunded or never held)."""
FAILED = ("failed", "expired", "unknown", "rejected", "refused")
CODE_MAX = 64


def _per_recipient(conn: Any) -> Any:
    """Integer micros of one recipient of its content (the database's integer division, as the triggers do)."""
    most = func.greatest if conn.dialect.name == "postgresql" else func.max
    return func.coalesce(batch_contents.c.cost_micros // most(batch_contents.c.recipients, 1), 0)


def _code(r: Any) -> Any:
    return case(
        (r.status.in_(FAILED), func.substr(func.coalesce(r.carrier_code, r.detail, r.status), 1, CODE_MAX)),
        else_=literal(""),
    )


def _rows(conn: Any, q: Select) -> list[tuple[datetime, str, int, int]]:
    return [(_aware(x.created_at), x.state, int(x.n), int(x.cost or 0)) for x in conn.execute(q) if x.n]


def daily_states(ctx: Context, tenant_id: int, *, since: datetime) -> list[tuple[datetime, str, int, int]]:
    """Recipients per batch creation time and state since ``since`` (UTC times; the caller buckets them by day
    or hour in the tenant's zone): ``[(created_at, state, count, cost_micros), …]``, one row per batch and state;
    the cost is that of the recipients handed to a carrier."""
    g, b = recipient_rollup.c, batches.c
    st = _recipient_state(g.status)
    q = (
        select(
            b.id,
            b.created_at,
            st.label("state"),
            func.sum(g.n).label("n"),
            func.sum(case((g.status.in_(HANDED_OVER), g.cost_micros), else_=0)).label("cost"),
        )
        .select_from(recipient_rollup.join(batches, b.id == g.batch_id))
        .where(b.tenant_id == tenant_id, b.created_at >= since.astimezone(UTC))
        .group_by(b.id, b.created_at, st)
    )
    with ctx.db.connect() as conn:
        return _rows(conn, q)


def daily_states_scan(ctx: Context, tenant_id: int, *, since: datetime) -> list[tuple[datetime, str, int, int]]:
    """``daily_states`` from every recipient (no rollup)."""
    r, b, c = recipients.c, batches.c, batch_contents.c
    st = _recipient_state()
    with ctx.db.connect() as conn:
        cost = func.sum(case((r.status.in_(HANDED_OVER), _per_recipient(conn)), else_=0))
        q = (
            select(b.id, b.created_at, st.label("state"), func.count().label("n"), cost.label("cost"))
            .select_from(
                recipients.join(batches, b.id == r.batch_id).outerjoin(
                    batch_contents, and_(c.batch_id == r.batch_id, c.content_id == r.content_id)
                )
            )
            .where(b.tenant_id == tenant_id, b.created_at >= since.astimezone(UTC))
            .group_by(b.id, b.created_at, st)
        )
        return _rows(conn, q)


def failure_codes(ctx: Context, tenant_id: int, *, since: datetime, limit: int = 20) -> list[dict[str, Any]]:
    """The tenant's failed recipients since ``since`` by carrier and failure code (the carrier's code, else
    our detail), most frequent first."""
    g, b = recipient_rollup.c, batches.c
    n = func.sum(g.n)
    q = (
        select(g.carrier, g.status, g.code, n.label("n"))
        .select_from(recipient_rollup.join(batches, b.id == g.batch_id))
        .where(b.tenant_id == tenant_id, b.created_at >= since.astimezone(UTC), g.status.in_(FAILED))
        .group_by(g.carrier, g.status, g.code)
        .having(n > 0)
        .order_by(n.desc(), g.code, g.carrier, g.status)
        .limit(limit)
    )
    with ctx.db.connect() as conn:
        return [{"carrier": x.carrier, "state": x.status, "code": x.code, "n": int(x.n)} for x in conn.execute(q)]


def failure_codes_scan(ctx: Context, tenant_id: int, *, since: datetime, limit: int = 20) -> list[dict[str, Any]]:
    """``failure_codes`` from every recipient (no rollup)."""
    r, b = recipients.c, batches.c
    code = _code(r)
    q = (
        select(r.carrier, r.status, code.label("code"), func.count().label("n"))
        .select_from(recipients.join(batches, b.id == r.batch_id))
        .where(b.tenant_id == tenant_id, b.created_at >= since.astimezone(UTC), r.status.in_(FAILED))
        .group_by(r.carrier, r.status, code)
        .order_by(func.count().desc(), code, r.carrier, r.status)
        .limit(limit)
    )
    with ctx.db.connect() as conn:
        return [{"carrier": x.carrier, "state": x.status, "code": x.code, "n": int(x.n)} for x in conn.execute(q)]


__all__ = ["FAILED", "HANDED_OVER", "daily_states", "daily_states_scan", "failure_codes", "failure_codes_scan"]
