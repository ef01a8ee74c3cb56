"""Idempotency keys that name what their request made, and which process runs it (issue 17, exactly once).

``owner`` (host:pid:start:request) lets a retry take over at once a key whose process is gone; ``resource`` is
set in the same transaction as the request's first effect, so a retry after a crash resumes what was made.
``verifications.recorded_at``: a resumed send counts its code once. ``batches.secret_enc``: a verification code,
sealed with the phone vault, so it leaves the stored text when the gateway takes the message.

Revision ID: idemexact_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "idemexact_0001"
down_revision = "0001"
branch_labels = ("idemexact",)
depends_on = "messages_0001"  # the idempotency_keys table


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as t:
        t.add_column(sa.Column("owner", sa.String(200), nullable=True))
        t.add_column(sa.Column("resource", sa.String(100), nullable=True))
    with op.batch_alter_table("batches") as t:  # a verification code, sealed, until the message is handed over
        t.add_column(sa.Column("secret_enc", sa.LargeBinary, nullable=True))
    with op.batch_alter_table("verifications") as t:  # its send counted and audited: once, a resumed send too
        t.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as t:
        t.drop_column("secret_enc")
    with op.batch_alter_table("verifications") as t:
        t.drop_column("recorded_at")
    with op.batch_alter_table("idempotency_keys") as t:
        t.drop_column("resource")
        t.drop_column("owner")
