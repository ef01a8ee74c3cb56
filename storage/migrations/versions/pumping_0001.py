"""Anti-pumping allow-lists and blocks (see pumping/_tables.py): SQL keeps them, Redis only the counters.

Revision ID: pumping_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pumping_0001"
down_revision = "0001"
branch_labels = ("pumping",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pumping_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("code", sa.String(48), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_pumping_rules_subject", "pumping_rules", ["scope", "subject"])


def downgrade() -> None:
    op.drop_index("ix_pumping_rules_subject", table_name="pumping_rules")
    op.drop_table("pumping_rules")
