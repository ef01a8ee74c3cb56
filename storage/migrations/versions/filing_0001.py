"""Signature filing: applications, their encrypted documents, per-channel filing status.

Revision ID: filing_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "filing_0001"
down_revision = "0001"
branch_labels = ("filing",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "filed_signatures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("use", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("reviewer", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("tenant_id", "name", name="uq_filed_signatures_name"),
    )
    op.create_index("ix_filed_signatures_tenant_id", "filed_signatures", ["tenant_id"])
    op.create_table(
        "filed_signature_documents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("signature_id", sa.Integer, sa.ForeignKey("filed_signatures.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("filename", sa.String(120), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data_enc", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_filed_signature_documents_signature_id", "filed_signature_documents", ["signature_id"])
    op.create_table(
        "filed_signature_channels",
        sa.Column("signature_id", sa.Integer, sa.ForeignKey("filed_signatures.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("filed_signature_channels")
    op.drop_table("filed_signature_documents")
    op.drop_table("filed_signatures")
