"""Web log-in throttling: failed log-ins per account and per client address, and their locks.

Revision ID: webauth_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "webauth_0001"
down_revision = "0001"
branch_labels = ("webauth",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure", sa.Float, nullable=False),
        sa.Column("locked_at", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
