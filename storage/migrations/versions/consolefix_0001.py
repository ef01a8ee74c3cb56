"""Console defects of issue 19: a reviewer's category kept with the content it decided, rejected contact lines
kept encrypted for their own tenant's report, and compose drafts kept server-side per console user.

Revision ID: consolefix_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "consolefix_0001"
down_revision = "0001"
branch_labels = ("consolefix",)
depends_on = ("batches_0001", "console_0001")


def upgrade() -> None:
    with op.batch_alter_table("batch_contents") as t:
        t.add_column(sa.Column("review_category", sa.String(32), nullable=True))
    with op.batch_alter_table("contact_rejects") as t:
        # the line's value as uploaded, encrypted with the phone vault (the masked one stays in ``value``)
        t.add_column(sa.Column("phone_enc", sa.LargeBinary, nullable=True))
    op.create_table(
        "console_drafts",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("console_users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("form_enc", sa.LargeBinary, nullable=False),  # the form as JSON, vault-encrypted (it has numbers)
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_drafts")
    with op.batch_alter_table("contact_rejects") as t:
        t.drop_column("phone_enc")
    with op.batch_alter_table("batch_contents") as t:
        t.drop_column("review_category")
