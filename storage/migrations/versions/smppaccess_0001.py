"""SMPP access for customers (issue 18): which protocol a customer's message came in on (its receipts go back
over that server's binds), the ids of a long message's other parts (each part gets its own report), and the
MO delivered to an access account
(``access_mo``: a handset's reply waits in ``inbound_messages`` until one of the tenant's accounts is bound).

Revision ID: smppaccess_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "smppaccess_0001"
down_revision = "0001"
branch_labels = ("smppaccess",)
depends_on = ("cmppaccounts_0001", "batches_0001")


def upgrade() -> None:
    with op.batch_alter_table("cmpp_messages") as batch:
        batch.add_column(sa.Column("protocol", sa.String(4), nullable=False, server_default="cmpp"))
        batch.add_column(sa.Column("part_ids", sa.Text, nullable=True))
    with op.batch_alter_table("inbound_messages") as batch:  # the number itself, encrypted: MO over a bind
        batch.add_column(sa.Column("phone_enc", sa.LargeBinary, nullable=True))
    op.create_table(
        "access_mo",
        sa.Column("inbound_id", sa.Integer, sa.ForeignKey("inbound_messages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("cmpp_accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("protocol", sa.String(4), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("access_mo")
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("phone_enc")
    with op.batch_alter_table("cmpp_messages") as batch:
        batch.drop_column("part_ids")
        batch.drop_column("protocol")
