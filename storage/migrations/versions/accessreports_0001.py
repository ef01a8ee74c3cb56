"""Customer access (issue 18): reports owed to an access account that belong to no recipient row, kept in SQL until
they are written to a bind. Today: the REJECTD report of each part of a long message refused after its parts
were answered 0 (blocked, opted out, no budget), which used to wait in the server's memory and was lost with a
restart.

Revision ID: accessreports_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "accessreports_0001"
down_revision = "0001"
branch_labels = ("accessreports",)
depends_on = ("cmppaccounts_0001", "smppaccess_0001")


def upgrade() -> None:
    op.create_table(
        "access_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("cmpp_accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("protocol", sa.String(4), nullable=False),
        sa.Column("msg_id", sa.String(20), nullable=False),
        sa.Column("phone_enc", sa.LargeBinary, nullable=False),
        sa.Column("src_id", sa.String(21), nullable=False),
        sa.Column("stat", sa.String(7), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_access_reports_account_id", "access_reports", ["account_id"])
    op.create_index("ix_access_reports_msg_id", "access_reports", ["msg_id"])


def downgrade() -> None:
    op.drop_index("ix_access_reports_msg_id", table_name="access_reports")
    op.drop_index("ix_access_reports_account_id", table_name="access_reports")
    op.drop_table("access_reports")
