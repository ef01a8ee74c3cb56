"""A tenant's spending limit for batches, in the policy's currency (kept in micros)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from smsguard import audit

from ._common import Context, now
from ._lifecycle import micros, money
from ._tables import budgets


def set_budget(ctx: Context, tenant_id: int, limit: float | None, *, actor: str | None = None) -> dict[str, Any]:
    """Set (or with None remove) a tenant's budget, in the policy's currency."""
    from sqlalchemy.dialects import postgresql, sqlite

    with ctx.db.begin() as conn:
        if limit is None:
            conn.execute(delete(budgets).where(budgets.c.tenant_id == tenant_id))
        else:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(budgets).values(
                tenant_id=tenant_id, limit_micros=micros(limit), spent_micros=0, updated_at=now()
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id"],
                    set_={"limit_micros": stmt.excluded.limit_micros, "updated_at": stmt.excluded.updated_at},
                )
            )
        audit.append(
            conn,
            event_type="budget",
            actor=actor or ctx.actor,
            tenant_id=tenant_id,
            subject=f"tenant:{tenant_id}",
            payload={"limit": limit},
        )
    return get_budget(ctx, tenant_id)


def get_budget(ctx: Context, tenant_id: int) -> dict[str, Any]:
    with ctx.db.connect() as conn:
        row = conn.execute(select(budgets).where(budgets.c.tenant_id == tenant_id)).one_or_none()
    currency = ctx.policy.prices.currency
    if row is None:
        return {"limit": None, "spent": "0.0000", "remaining": None, "currency": currency}
    return {
        "limit": money(row.limit_micros),
        "spent": money(row.spent_micros),
        "remaining": money(row.limit_micros - row.spent_micros),
        "currency": currency,
    }
