"""Template versions: every edit of a template is stored; a reviewer approves or rejects each with a reason.

Revision ID: template_versions_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "template_versions_0001"
down_revision = "0001"
branch_labels = ("template_versions",)
depends_on = "batches_0001"


def upgrade() -> None:
    op.create_table(
        "sms_template_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("template_id", sa.Integer, sa.ForeignKey("sms_templates.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("signature", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("template_id", "version", name="uq_sms_template_versions"),
    )
    op.create_index("ix_sms_template_versions_template_id", "sms_template_versions", ["template_id"])


def downgrade() -> None:
    op.drop_table("sms_template_versions")
