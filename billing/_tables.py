"""The billing feature's tables (SQLAlchemy Core); ``storage/migrations/versions/billing_0001.py`` creates them.

Money is integer micro-units of the policy's currency (``*_micros``), as in the batches tables.

* ``billing_accounts``: one row per prepaid tenant; the row every ledger change locks first (``SELECT … FOR
  UPDATE`` on PostgreSQL, a write on SQLite), and a cache of the ledger's sums (``balance_micros``,
  ``held_micros``) that :func:`smsguard.billing.verify` checks against the entries.
* ``billing_entries``: the ledger. Each entry moves ``amount_micros`` (> 0) from one account to another; the
  tenant's accounts are ``available`` and ``held``, the platform's ``funding`` (top-ups, adjustments) and
  ``revenue`` (charges). So the balance is the sum of the entries' effects on available + held.
* ``billing_holds``: what was set aside for one batch (``ref`` ``batch:<id>``) at the prices of that moment;
  open until settled (charged in full, or its remainder released).
* ``billing_prices``: price per segment by tenant × carrier × kind; tenant 0 is the default price list and
  kind ``*`` any kind. What is not listed falls back to the policy's ``prices``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# storage's tenants table (revision 0001), declared here only for foreign keys; storage owns it.
tenants = Table("tenants", metadata, Column("id", Integer, primary_key=True), Column("name", String(64)))

ACCOUNTS = ("available", "held", "funding", "revenue")
ENTRY_KINDS = ("topup", "hold", "charge", "release", "refund", "adjustment")
CHARGE_ON = ("handover", "delivery")

accounts = Table(
    "billing_accounts",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("balance_micros", BigInteger, nullable=False),  # available + held
    Column("held_micros", BigInteger, nullable=False),
    Column("low_balance_micros", BigInteger, nullable=True),  # alert when available drops below
    Column("low_alerted", Boolean, nullable=False),  # below the threshold and told: re-armed by a top-up
    Column("charge_on", String(10), nullable=False),  # handover | delivery
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

holds = Table(
    "billing_holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("ref", String(100), nullable=False),  # batch:<id>
    Column("amount_micros", BigInteger, nullable=False),
    Column("charged_micros", BigInteger, nullable=False),
    Column("refunded_micros", BigInteger, nullable=False),  # given back after the charge (failed before carrier)
    Column("released_micros", BigInteger, nullable=False),
    Column("charge_on", String(10), nullable=False),  # the tenant's setting when the hold was taken
    Column("prices", Text, nullable=False),  # JSON {carrier: micros per segment} at the hold
    Column("state", String(8), nullable=False),  # open | settled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("tenant_id", "ref", name="uq_billing_holds_ref"),
)
Index("ix_billing_holds_state", holds.c.state)

entries = Table(
    "billing_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("debit", String(10), nullable=False),  # the account the money leaves
    Column("credit", String(10), nullable=False),  # the account it goes to
    Column("amount_micros", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("held_after", BigInteger, nullable=False),
    Column("hold_id", Integer, ForeignKey("billing_holds.id"), nullable=True),
    Column("quantity", Integer, nullable=True),  # messages charged / refunded by this entry
    Column("reference", String(100), nullable=True),  # a top-up's payment reference: unique per tenant
    Column("memo", Text, nullable=True),
    Column("actor", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "reference", name="uq_billing_entries_reference"),
)
Index("ix_billing_entries_tenant", entries.c.tenant_id, entries.c.id)
Index("ix_billing_entries_tenant_at", entries.c.tenant_id, entries.c.created_at)

prices = Table(
    "billing_prices",
    metadata,
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),  # 0: the default price list
    Column("carrier", String(10), primary_key=True),
    Column("kind", String(16), primary_key=True),  # verification | notification | marketing | *
    Column("price_micros", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
