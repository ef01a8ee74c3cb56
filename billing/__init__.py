"""Prepaid balance as a ledger (issue 19, point 2): top-ups, holds, charges, releases, refunds, adjustments,
price lists per tenant × carrier × kind, balances, statements and low-balance alerts.

::

    top_up(db, tenant_id, to_micros("100"), actor=…, reference="pay-123")    # `smsguard billing topup`
    with db.begin() as conn:                                                 # the batches feature:
        hold(conn, tenant_id, "batch:7", estimate, prices=…, actor=…)        #   at submit (402 if short)
        charge(conn, tenant_id, "batch:7", cost, quantity=n, actor=…)        #   per handed-over chunk
        refund(conn, …) · settle(conn, tenant_id, "batch:7", actor=…)        #   failures · the remainder
    get_balance(db, tenant_id) · statement(db, tenant_id, since=…) · verify(db, tenant_id)

The ledger knows nothing of batches; ``smsguard.batches`` decides when to hold, charge and settle, and its
``reconcile_billing`` settles holds against what its recipients say happened.
"""

from ._ledger import (
    InsufficientBalance,
    adjust,
    charge,
    get_balance,
    get_hold,
    hold,
    hold_prices,
    lock,
    open_holds,
    refund,
    remaining,
    set_settings,
    settle,
    statement,
    top_up,
    verify,
)
from ._money import MAX_AMOUNT, money, to_micros
from ._policy import Prices, prices_policy
from ._prices import ANY_KIND, CARRIERS, DEFAULT, KINDS, list_prices, price_table, set_price
from ._tables import CHARGE_ON, ENTRY_KINDS, metadata

__all__ = [
    "ANY_KIND",
    "CARRIERS",
    "CHARGE_ON",
    "DEFAULT",
    "ENTRY_KINDS",
    "KINDS",
    "MAX_AMOUNT",
    "InsufficientBalance",
    "Prices",
    "adjust",
    "charge",
    "get_balance",
    "get_hold",
    "hold",
    "hold_prices",
    "list_prices",
    "lock",
    "metadata",
    "money",
    "open_holds",
    "price_table",
    "prices_policy",
    "refund",
    "remaining",
    "set_price",
    "set_settings",
    "settle",
    "statement",
    "to_micros",
    "top_up",
    "verify",
]
