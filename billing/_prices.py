"""Price lists: micros per segment by tenant × carrier × kind.

Lookup, most specific first: the tenant's (carrier, kind), the tenant's (carrier, ``*``), the default list's
(tenant 0) (carrier, kind), the default list's (carrier, ``*``), then the caller's fallback (the policy's
``prices``). A batch's hold keeps the prices it was estimated at, so a change applies to batches submitted
after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from smsguard import audit
from smsguard.core import InputError

from ._ledger import now
from ._money import money
from ._tables import prices

CARRIERS = ("mobile", "unicom", "telecom", "broadnet", "virtual", "other")
KINDS = ("verification", "notification", "marketing")
ANY_KIND = "*"
DEFAULT = 0
"""The tenant id of the default price list."""


def price_table(conn: Connection, tenant_id: int, kind: str, fallback: Mapping[str, int]) -> dict[str, int]:
    """``{carrier: micros per segment}`` for a ``kind`` of message of ``tenant_id``."""
    rows = conn.execute(
        select(prices.c.tenant_id, prices.c.carrier, prices.c.kind, prices.c.price_micros).where(
            prices.c.tenant_id.in_((tenant_id, DEFAULT)), prices.c.kind.in_((kind, ANY_KIND))
        )
    ).all()
    rank = {(tenant_id, kind): 0, (tenant_id, ANY_KIND): 1, (DEFAULT, kind): 2, (DEFAULT, ANY_KIND): 3}
    best: dict[str, tuple[int, int]] = {}
    for r in rows:
        k = rank[(r.tenant_id, r.kind)]
        if r.carrier not in best or k < best[r.carrier][0]:
            best[r.carrier] = (k, r.price_micros)
    return {c: best[c][1] if c in best else int(fallback.get(c, fallback.get("other", 0))) for c in CARRIERS}


def set_price(
    db: Engine, tenant_id: int, carrier: str, kind: str, price: int | None, *, actor: str
) -> dict[str, Any]:
    """Set (None: remove) one price of ``tenant_id``'s list (0: the default list), in micros per segment."""
    if carrier not in CARRIERS:
        raise InputError(f"carrier must be one of {', '.join(CARRIERS)}", where="carrier", code="billing.carrier")
    if kind not in (*KINDS, ANY_KIND):
        raise InputError(f"kind must be one of {', '.join(KINDS)} or *", where="kind", code="billing.kind")
    if price is not None and price < 0:
        raise InputError("a price must not be negative", where="price", code="billing.amount")
    with db.begin() as conn:
        conn.execute(delete(prices).where(prices.c.tenant_id == tenant_id, prices.c.carrier == carrier,
                                          prices.c.kind == kind))
        if price is not None:
            conn.execute(prices.insert().values(tenant_id=tenant_id, carrier=carrier, kind=kind, price_micros=price,
                                                updated_at=now()))
        audit.append(conn, event_type="billing.price", actor=actor, tenant_id=tenant_id or None,
                     subject=f"billing:{tenant_id}" if tenant_id else "billing:default",
                     payload={"carrier": carrier, "kind": kind, "price": money(price) if price is not None else None})
    return {"tenant_id": tenant_id, "carrier": carrier, "kind": kind,
            "price": money(price) if price is not None else None}


def list_prices(db: Engine, tenant_id: int, fallback: Mapping[str, int], *, currency: str = "CNY") -> dict[str, Any]:
    """The prices that apply to ``tenant_id``, per kind and carrier (what a batch is estimated and held at)."""
    with db.connect() as conn:
        table = {k: price_table(conn, tenant_id, k, fallback) for k in KINDS}
    return {"currency": currency, "unit": "segment",
            "prices": {k: {c: money(p) for c, p in row.items()} for k, row in table.items()}}
