"""Reviewer workbench (issue 20): the undo grace window before a decision is released.

``review_items.release_at`` is the durable deadline of a decision that is still "pending release" (its
reviewer may undo it until then; the release worker releases it after, even after a restart);
``undo_status`` is the open status the item goes back to when it is undone.

Revision ID: reviewundo_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "reviewundo_0001"
down_revision = "0001"
branch_labels = ("reviewundo",)
depends_on = ("review_0002",)


def upgrade() -> None:
    with op.batch_alter_table("review_items") as t:
        t.add_column(sa.Column("release_at", sa.DateTime(timezone=True), nullable=True))
        t.add_column(sa.Column("undo_status", sa.String(16), nullable=True))
    op.create_index("ix_review_items_release_at", "review_items", ["release_at"])


def downgrade() -> None:
    op.drop_index("ix_review_items_release_at", table_name="review_items")
    with op.batch_alter_table("review_items") as t:
        t.drop_column("undo_status")
        t.drop_column("release_at")
