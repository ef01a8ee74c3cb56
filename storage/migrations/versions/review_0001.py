"""Human review queue: items, reviewer actions, training labels, reviewer users and sessions.

Revision ID: review_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "review_0001"
down_revision = "0001"
branch_labels = ("review",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_ref", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("verdict", sa.Text, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("sample_recipients", sa.Text, nullable=False),
        sa.Column("required_approvals", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=True),
        sa.Column("decision_category", sa.String(32), nullable=True),
        sa.Column("stream_id", sa.String(32), nullable=True),
        sa.Column("dispatch_epoch", sa.String(32), nullable=True),
        sa.UniqueConstraint("source", "source_ref", name="uq_review_items_source_ref"),
    )
    op.create_index("ix_review_items_status_prio", "review_items", ["status", "priority", "created_at"])
    op.create_index("ix_review_items_content_hash", "review_items", ["content_hash"])
    op.create_index("ix_review_items_dispatch", "review_items", ["dispatch_epoch"])
    op.create_index("ix_review_items_decided_at", "review_items", ["decided_at"])
    op.create_table(
        "review_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("review_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("review_users.id"), nullable=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("item_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_review_actions_item_id", "review_actions", ["item_id"])
    op.create_table(
        "review_labels",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("review_items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("label", sa.Integer, nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "review_sessions",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("review_sessions")
    op.drop_table("review_labels")
    op.drop_table("review_actions")
    op.drop_index("ix_review_items_decided_at", "review_items")
    op.drop_index("ix_review_items_dispatch", "review_items")
    op.drop_index("ix_review_items_content_hash", "review_items")
    op.drop_index("ix_review_items_status_prio", "review_items")
    op.drop_table("review_items")
    op.drop_table("review_users")
