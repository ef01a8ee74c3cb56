"""Vendor-compatible endpoints (Tencent Cloud SMS, Aliyun Dysmsapi): credentials, sends, pulls (issue 17).

Revision ID: vendors_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "vendors_0001"
down_revision = "0001"
branch_labels = ("vendors",)
depends_on = "batches_0001"


def upgrade() -> None:
    op.create_table(
        "vendor_credentials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("vendor", sa.String(8), nullable=False),
        sa.Column("access_id", sa.String(64), nullable=False, unique=True),
        sa.Column("secret_enc", sa.LargeBinary, nullable=False),
        sa.Column("app_id", sa.String(32), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_vendor_credentials_tenant_id", "vendor_credentials", ["tenant_id"])
    op.create_table(
        "vendor_sends",
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("credential_id", sa.Integer, sa.ForeignKey("vendor_credentials.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("biz_id", sa.String(32), nullable=False),
        sa.Column("template_ref", sa.String(64), nullable=False),
        sa.Column("session_context", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_vendor_sends_credential_id", "vendor_sends", ["credential_id"])
    op.create_index("ix_vendor_sends_tenant_id", "vendor_sends", ["tenant_id"])
    op.create_index("ix_vendor_sends_biz_id", "vendor_sends", ["biz_id"])
    op.create_table(
        "vendor_pulled",
        sa.Column("credential_id", sa.Integer, sa.ForeignKey("vendor_credentials.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("batch_id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "vendor_cursors",
        sa.Column("credential_id", sa.Integer, sa.ForeignKey("vendor_credentials.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vendor_cursors")
    op.drop_table("vendor_pulled")
    op.drop_index("ix_vendor_sends_biz_id", table_name="vendor_sends")
    op.drop_index("ix_vendor_sends_tenant_id", table_name="vendor_sends")
    op.drop_index("ix_vendor_sends_credential_id", table_name="vendor_sends")
    op.drop_table("vendor_sends")
    op.drop_index("ix_vendor_credentials_tenant_id", table_name="vendor_credentials")
    op.drop_table("vendor_credentials")
