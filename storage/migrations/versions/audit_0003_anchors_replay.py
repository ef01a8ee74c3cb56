"""Audit: keyed chain (a MAC per event and on the head) and the content-addressed store of the policy, lexicon
and model versions that were in force (for ``smsguard audit replay``).

``audit_head.keyed_from`` is the first event id written with a MAC: events already in the table when this
migration runs were written before keying existed and are reported as such by ``audit verify``.

Revision ID: audit_anchors_0001
Revises: audit_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_anchors_0001"
down_revision = "audit_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("mac", sa.String(64), nullable=True))
    op.add_column("audit_head", sa.Column("mac", sa.String(64), nullable=True))
    op.add_column("audit_head", sa.Column("keyed_from", sa.BigInteger, nullable=False, server_default="1"))
    op.execute("UPDATE audit_head SET keyed_from = last_id + 1")
    op.create_table(
        "audit_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "audit_versions",
        sa.Column("kind", sa.String(16), primary_key=True),  # policy | lexicon | model
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_versions")
    op.drop_table("audit_blobs")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("keyed_from")
        batch.drop_column("mac")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("mac")
