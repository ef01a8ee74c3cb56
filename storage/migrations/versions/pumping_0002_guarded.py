"""``batches.guarded``: the API's anti-pumping guard judged this send at request time (``/v1/verify``, a
verification ``/v1/messages``), so the release step does not judge (and count) it a second time.

Revision ID: pumping_0002
Revises: pumping_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pumping_0002"
down_revision = "pumping_0001"
branch_labels = None
depends_on = "batches_0001"


def upgrade() -> None:
    op.add_column("batches", sa.Column("guarded", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("guarded")
