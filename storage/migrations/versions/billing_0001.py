"""Prepaid balance as a ledger (issue 19, point 2): accounts, holds, entries and price lists.

Revision ID: billing_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "billing_0001"
down_revision = "0001"
branch_labels = ("billing",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("balance_micros", sa.BigInteger, nullable=False),
        sa.Column("held_micros", sa.BigInteger, nullable=False),
        sa.Column("low_balance_micros", sa.BigInteger, nullable=True),
        sa.Column("low_alerted", sa.Boolean, nullable=False),
        sa.Column("charge_on", sa.String(10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "billing_holds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ref", sa.String(100), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("charged_micros", sa.BigInteger, nullable=False),
        sa.Column("refunded_micros", sa.BigInteger, nullable=False),
        sa.Column("released_micros", sa.BigInteger, nullable=False),
        sa.Column("charge_on", sa.String(10), nullable=False),
        sa.Column("prices", sa.Text, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("settled_at", TS, nullable=True),
        sa.UniqueConstraint("tenant_id", "ref", name="uq_billing_holds_ref"),
    )
    op.create_index("ix_billing_holds_state", "billing_holds", ["state"])
    op.create_table(
        "billing_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("debit", sa.String(10), nullable=False),
        sa.Column("credit", sa.String(10), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("held_after", sa.BigInteger, nullable=False),
        sa.Column("hold_id", sa.Integer, sa.ForeignKey("billing_holds.id"), nullable=True),
        sa.Column("quantity", sa.Integer, nullable=True),
        sa.Column("reference", sa.String(100), nullable=True),
        sa.Column("memo", sa.Text, nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "reference", name="uq_billing_entries_reference"),
    )
    op.create_index("ix_billing_entries_tenant", "billing_entries", ["tenant_id", "id"])
    op.create_index("ix_billing_entries_tenant_at", "billing_entries", ["tenant_id", "created_at"])
    op.create_table(
        "billing_prices",
        sa.Column("tenant_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("carrier", sa.String(10), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("price_micros", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("billing_prices")
    op.drop_index("ix_billing_entries_tenant_at", "billing_entries")
    op.drop_index("ix_billing_entries_tenant", "billing_entries")
    op.drop_table("billing_entries")
    op.drop_index("ix_billing_holds_state", "billing_holds")
    op.drop_table("billing_holds")
    op.drop_table("billing_accounts")
