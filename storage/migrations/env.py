"""Alembic environment: runs on the connection ``storage.migrate(engine)`` hands over (no alembic.ini).

A new migration is a new file in ``versions/`` whose ``down_revision`` is the newest one's ``revision``;
``storage.migrate`` (run by ``smsguard serve`` on start) applies it.
"""

from __future__ import annotations

from alembic import context

from smsguard.storage._models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `storage.migrate` runs us
    raise RuntimeError("storage migrations run through storage.migrate(engine)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
