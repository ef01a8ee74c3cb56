"""Console send records and API keys (issue 19 point 3): when each API key was last used, and an index that
finds a number's recipients by its keyed hash (the send-record search by phone number).

Revision ID: consolelog_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "consolelog_0001"
down_revision = "0001"
branch_labels = ("consolelog",)
depends_on = ("batches_0001", "audit_0002")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as t:
        t.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_recipients_phone_hash", "recipients", ["phone_hash", "batch_id"])


def downgrade() -> None:
    op.drop_index("ix_recipients_phone_hash", table_name="recipients")
    with op.batch_alter_table("api_keys") as t:
        t.drop_column("last_used_at")
