"""The batches side of the prepaid ledger (``smsguard.billing``): when a batch is held, charged and settled.

* **hold** at submit, in the screening transaction: the estimate (recipients × segments × the tenant's
  price per carrier and kind); more than is available and the batch goes back to ``draft`` with
  ``billing.insufficient_balance`` (402). The prices are kept with the hold.
* **charge**, per the tenant's setting (kept with the hold): ``handover`` — in the release worker's chunk
  transaction, for exactly the recipients that chunk records as handed over (``submitted_at`` set now), so a
  crash leaves either both or neither; ``delivery`` — in the event sink's transaction, per delivered receipt.
* **refund** (``handover``): a message the gateway refused at submit (report ``rejected``: it never reached
  the carrier) gets its charge back when its report is written.
* **settle**: a batch ``done`` or ``cancelled`` (or ``sending``, when charged at hand-over) releases what
  its hold still sets aside: recipients opted out, capped, rejected in review, cancelled.

:func:`reconcile` is the safety net the release role runs every minute (and ``smsguard billing reconcile``):
for each open hold whose batch finished, vanished, or whose release worker died (lease expired), it
recomputes from the recipients what should have been charged, charges or refunds the difference and settles
the hold when the batch is over, so the holds always match what happened.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, not_, select

from smsguard import audit, billing

from ._common import Context, now
from ._tables import batch_contents, batches, recipients

log = logging.getLogger("smsguard.billing")

FINISHED = ("done", "cancelled", "draft")
BEFORE_CARRIER = and_(recipients.c.status == "failed", recipients.c.detail.like("rejected:%"))
"""A recipient the gateway refused at submit: never reached the carrier, so never charged."""


def ref(batch_id: int) -> str:
    return f"batch:{batch_id}"


def policy_prices(ctx: Context) -> dict[str, int]:
    """The policy's ``prices`` in micros: the fallback below every price list."""
    p = ctx.policy.prices
    return {c: billing.to_micros(p.for_carrier(c), where="policy prices") for c in billing.CARRIERS}


def prices_for(ctx: Context, conn: Connection, tenant_id: int, kind: str) -> dict[str, int]:
    return billing.price_table(conn, tenant_id, kind, policy_prices(ctx))


def take_hold(conn: Connection, batch: Any, estimate: int, prices: Mapping[str, int], actor: str) -> None:
    """At submit: hold the estimate (no-op for a tenant that is not prepaid); InsufficientBalance otherwise."""
    billing.hold(conn, batch.tenant_id, ref(batch.id), int(estimate), prices=prices, actor=actor,
                 memo=f"batch {batch.id} submitted")


def _cost(prices: Mapping[str, int]) -> Any:
    price = case({c: p for c, p in prices.items() if c != "other"}, value=recipients.c.carrier,
                 else_=prices.get("other", 0))
    return func.coalesce(func.sum(batch_contents.c.segments * price), 0)


def _priced(prices: Mapping[str, int], *where: Any) -> Any:
    """SELECT (recipients, cost) of the recipients matching ``where``, at ``prices``."""
    return (
        select(func.count(), _cost(prices))
        .select_from(recipients.join(batch_contents, and_(batch_contents.c.batch_id == recipients.c.batch_id,
                                                          batch_contents.c.content_id == recipients.c.content_id)))
        .where(*where)
    )


def charge_handed(conn: Connection, b: Any, lo: int, hi: int, at: datetime, actor: str) -> int:
    """In the release chunk's transaction: charge the recipients it just recorded as handed over (those whose
    ``submitted_at`` it set to ``at``), when the batch is charged at hand-over. Returns what was charged."""
    h = billing.get_hold(conn, b.tenant_id, ref(b.id))
    if h is None or h.charge_on != "handover":
        return 0
    n, cost = conn.execute(_priced(billing.hold_prices(h), recipients.c.batch_id == b.id,
                                   recipients.c.seq.between(lo, hi), recipients.c.submitted_at == at,
                                   not_(BEFORE_CARRIER))).one()
    return billing.charge(conn, b.tenant_id, ref(b.id), int(cost), quantity=int(n), actor=actor,
                          memo=f"handed over: seq {lo}-{hi}") if n else 0


def on_state(conn: Connection, b: Any, to: str, actor: str) -> None:
    """A batch moved to ``to`` (in that transaction): settle its hold once nothing more will be charged."""
    if to in FINISHED or to == "sending":
        h = billing.get_hold(conn, b.tenant_id, ref(b.id))
        if h is not None and h.state == "open" and (to != "sending" or h.charge_on == "handover"):
            billing.settle(conn, b.tenant_id, ref(b.id), actor=actor, memo=f"batch {b.id} {to}")


def bill_reports(conn: Connection, changed: list[tuple[dict[str, Any], Any]], actor: str) -> None:
    """In the event sink's transaction, for the reports about to change their (still open) recipients: charge
    delivered ones of batches charged on delivery; refund the ones refused before the carrier of batches
    charged at hand-over (if they were charged: recorded as handed over)."""
    todo: dict[int, list[tuple[dict[str, Any], Any]]] = defaultdict(list)
    for r, f in changed:
        if r["st"] == "delivered" or (r["dt"] or "").startswith("rejected:"):
            todo[r["b"]].append((r, f))
    for batch_id, items in todo.items():
        tenant_id = items[0][1].tenant_id
        h = billing.get_hold(conn, tenant_id, ref(batch_id))
        if h is None:
            continue
        if h.charge_on == "delivery":
            seqs = [r["s"] for r, _ in items if r["st"] == "delivered"]
            fn, memo = billing.charge, "delivered"
        else:
            seqs = [r["s"] for r, f in items if r["st"] != "delivered" and f.submitted_at is not None]
            fn, memo = billing.refund, "refused by the gateway before the carrier"
        if not seqs:
            continue
        n, cost = conn.execute(_priced(billing.hold_prices(h), recipients.c.batch_id == batch_id,
                                       recipients.c.seq.in_(seqs))).one()
        fn(conn, tenant_id, ref(batch_id), int(cost), quantity=int(n), actor=actor, memo=memo)


# -- reconciliation ---------------------------------------------------------------------------------------


def _due(h: Any, b: Any, t: datetime) -> bool:
    """Whether a hold needs a look: its batch is over or gone, or its release worker died (lease expired)."""
    if b is None or b.state in FINISHED or (b.state == "sending" and h.charge_on == "handover"):
        return True
    lease = b.lease_until if b.lease_until is None or b.lease_until.tzinfo else b.lease_until.replace(tzinfo=t.tzinfo)
    return b.state == "releasing" and b.lease_owner is not None and lease is not None and lease < t


def reconcile(ctx: Context, *, actor: str = "system:billing") -> list[dict[str, Any]]:
    """Settle the open holds against their recipients; returns what was done for each hold it looked at."""
    out: list[dict[str, Any]] = []
    with ctx.db.connect() as conn:
        open_ = [h for h in billing.open_holds(conn) if h.ref.startswith("batch:")]
    for h0 in open_:
        batch_id = int(h0.ref.split(":", 1)[1])
        with ctx.db.begin() as conn:
            billing.lock(conn, h0.tenant_id)  # first: every charge of this tenant waits for us, or we for it
            h = billing.get_hold(conn, h0.tenant_id, h0.ref)
            b = conn.execute(select(batches).where(batches.c.id == batch_id)).one_or_none()
            if h is None or h.state != "open" or not _due(h, b, now()):
                continue
            prices = billing.hold_prices(h)
            if b is None:
                n, expected = 0, 0
            elif h.charge_on == "handover":
                n, expected = conn.execute(_priced(prices, recipients.c.batch_id == batch_id,
                                                   recipients.c.submitted_at.is_not(None),
                                                   not_(BEFORE_CARRIER))).one()
            else:
                n, expected = conn.execute(_priced(prices, recipients.c.batch_id == batch_id,
                                                   recipients.c.status == "delivered")).one()
            net = h.charged_micros - h.refunded_micros
            charged = refunded = 0
            if expected > net:
                charged = billing.charge(conn, h.tenant_id, h.ref, int(expected) - net, quantity=int(n),
                                         actor=actor, memo="reconciled: handed over, not charged")
            elif expected < net:
                refunded = billing.refund(conn, h.tenant_id, h.ref, net - int(expected), quantity=int(n),
                                          actor=actor, memo="reconciled: charged, not handed over")
            released = None
            if b is None or b.state in FINISHED or (b.state == "sending" and h.charge_on == "handover"):
                released = billing.settle(conn, h.tenant_id, h.ref, actor=actor,
                                          memo=f"reconciled: batch {b.state if b is not None else 'deleted'}")
            item = {"hold": h.ref, "tenant_id": h.tenant_id, "batch_state": b.state if b is not None else None,
                    "charged": billing.money(charged), "refunded": billing.money(refunded),
                    "released": billing.money(released) if released is not None else None}
            if charged or refunded or released is not None:
                audit.append(conn, event_type="billing.reconciled", actor=actor, tenant_id=h.tenant_id,
                             subject=f"billing:{h.tenant_id}", payload=item)
            out.append(item)
    for item in out:
        if item["charged"] != "0.0000" or item["refunded"] != "0.0000":
            log.warning("reconciled %s: charged %s, refunded %s", item["hold"], item["charged"], item["refunded"])
    return out
