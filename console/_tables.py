"""The console's own tables (SQLAlchemy Core); ``storage/migrations/versions/console_0001.py`` creates them.

Why a table of its own rather than a ``tenant_id`` column and a ``customer`` role on ``review_users``: the
reviewer UI authenticates anyone in ``review_users`` and shows every tenant's queue, so a customer row there
would be one missing role check away from reading other tenants' messages. Two tables keep the two audiences
apart by construction: a console account can never log in to ``/review`` and a reviewer never to ``/console``.
Passwords are argon2id hashes, as for reviewers; sessions reuse the reviewer UI's SQL session table
(``review_sessions``) under a ``console:`` key prefix.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, LargeBinary, MetaData, String, Table

metadata = MetaData()

# storage's tenants table (revision 0001), declared here only for the foreign keys; storage owns it.
tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
)

ROLES = ("customer", "viewer")
"""``customer`` creates templates, uploads contact lists and composes batches for its tenant; ``viewer`` only
reads its tenant's pages and reports (e.g. an accountant, or a manager watching a campaign)."""

console_users = Table(
    "console_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2id (argon2-cffi), never the password
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
)

console_tenants = Table(
    "console_tenants",
    metadata,
    # the tenant's time zone: schedule pickers and reports show local times in it (IANA name)
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("time_zone", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

console_drafts = Table(
    "console_drafts",
    metadata,
    # one compose draft per console user (storage/migrations/versions/consolefix_0001.py): kept server-side so a
    # session that expires mid-compose, or a browser closed, loses nothing; restored after the next log-in
    Column("user_id", Integer, ForeignKey("console_users.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("form_enc", LargeBinary, nullable=False),  # the form as JSON, vault-encrypted: it holds phone numbers
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
