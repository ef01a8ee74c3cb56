"""Reviewer workbench: structured decision reasons and text search.

``decision_reason_code`` (items) and ``reason_code`` (actions) hold the code of the canned reason chosen from
policy.yaml ``review.reasons`` (the label and any free text stay in ``decision_reason`` / ``reason``).
``search_text`` is the folded view of the text (full/half width, traditional → simplified, look-alikes, noise
removed), so a search for 百家乐 finds 百 家 樂; rows from before are folded here.

Revision ID: review_0002
Revises: review_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "review_0002"
down_revision = "review_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("review_items", sa.Column("decision_reason_code", sa.String(40), nullable=True))
    op.add_column("review_items", sa.Column("search_text", sa.Text, nullable=True))
    op.add_column("review_actions", sa.Column("reason_code", sa.String(40), nullable=True))
    op.create_index("ix_review_items_status_sev", "review_items", ["status", "severity", "priority", "created_at"])

    from smsguard.engine import normalizer

    fold = normalizer().fold
    conn = op.get_bind()
    items = sa.table("review_items", sa.column("id", sa.Integer), sa.column("text", sa.Text),
                     sa.column("search_text", sa.Text))
    last = 0
    while True:
        rows = conn.execute(sa.select(items.c.id, items.c.text).where(items.c.id > last)
                            .order_by(items.c.id).limit(1000)).all()
        if not rows:
            break
        conn.execute(items.update().where(items.c.id == sa.bindparam("rid")).values(search_text=sa.bindparam("st")),
                     [{"rid": i, "st": fold(t)} for i, t in rows])
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_review_items_status_sev", table_name="review_items")
    with op.batch_alter_table("review_actions") as batch:
        batch.drop_column("reason_code")
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("search_text")
        batch.drop_column("decision_reason_code")
