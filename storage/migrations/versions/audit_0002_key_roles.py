"""API key roles: ``client`` (screening), ``admin`` (also reloads), ``auditor`` (its tenant's audit log,
numbers masked), ``auditor_full`` (every tenant's audit log, numbers as stored).

Revision ID: audit_0002
Revises: audit_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "audit_0002"
down_revision = "audit_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("role", sa.String(16), nullable=False, server_default="client"))
    op.execute("UPDATE api_keys SET role = 'admin' WHERE admin")


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("role")
