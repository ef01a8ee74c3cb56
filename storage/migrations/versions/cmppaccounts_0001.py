"""CMPP access for customers (issue 18): accounts per tenant and Msg_Id -> (batch, seq) with report state.

Revision ID: cmppaccounts_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cmppaccounts_0001"
down_revision = "0001"
branch_labels = ("cmppaccounts",)
depends_on = "batches_0001"


def upgrade() -> None:
    op.create_table(
        "cmpp_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sp_id", sa.String(6), nullable=False, unique=True),
        sa.Column("secret_enc", sa.LargeBinary, nullable=False),
        sa.Column("max_connections", sa.Integer, nullable=False),
        sa.Column("window", sa.Integer, nullable=False),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_cmpp_accounts_tenant_id", "cmpp_accounts", ["tenant_id"])
    op.create_table(
        "cmpp_messages",
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("msg_id", sa.String(20), nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("cmpp_accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("phone_enc", sa.LargeBinary, nullable=False),
        sa.Column("src_id", sa.String(21), nullable=False),
        sa.Column("registered_delivery", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_cmpp_messages_msg_id", "cmpp_messages", ["msg_id"])
    op.create_index("ix_cmpp_messages_account_id", "cmpp_messages", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_cmpp_messages_account_id", table_name="cmpp_messages")
    op.drop_index("ix_cmpp_messages_msg_id", table_name="cmpp_messages")
    op.drop_table("cmpp_messages")
    op.drop_index("ix_cmpp_accounts_tenant_id", table_name="cmpp_accounts")
    op.drop_table("cmpp_accounts")
