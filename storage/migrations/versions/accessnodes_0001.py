"""Customer access (issue 18): a row per start of a CMPP / SMPP server for customers; its id (modulo 4096) is the
node number folded into the Msg_Ids that server hands out (sending/_access.py), so servers on several hosts
sharing this database, and a server restarted within the same second, never hand out the same Msg_Id. SQL, not
Redis, is the source of truth: a Redis that loses its data must not give a live server's number to another.

Revision ID: accessnodes_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "accessnodes_0001"
down_revision = "0001"
branch_labels = ("accessnodes",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,  # ids never reused, even after rows are deleted
    )


def downgrade() -> None:
    op.drop_table("access_nodes")
