"""Number portability (携号转网): number (keyed hash) → the network it is on now; see phones/_portability.py.

Revision ID: phones_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "phones_0001"
down_revision = "0001"
branch_labels = ("phones",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "number_portability",
        sa.Column("phone_hash", sa.String(64), primary_key=True),
        sa.Column("carrier", sa.String(10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("number_portability")
