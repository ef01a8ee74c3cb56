"""The messages feature's tables (SQLAlchemy Core); ``storage/migrations/versions/messages_0001.py`` creates them.

A single message is a one-recipient batch (``batches``): its state, verdict, delivery report and cost live
there. ``messages`` only names it for the developer API (id, tenant, when, to whom by keyed hash). Numbers
are never stored in clear: ``phone_hash`` (keyed HMAC) to find them, ``phone_masked`` to show them.

Verification codes are stored only as a keyed hash (``code_hash``: HMAC with the deployment's hash key over a
per-code salt and the code). Conversion is counted per tenant, signature, number prefix (first 7 digits: a
carrier block of 10,000 numbers, never joined to a number here) and UTC day.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

tenants = Table("tenants", metadata, Column("id", Integer, primary_key=True))  # storage owns it: for FKs
batches = Table("batches", metadata, Column("id", Integer, primary_key=True))  # batches owns it: for FKs

ORIGINS = ("api", "verify")

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("batch_id", Integer, ForeignKey("batches.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("phone_hash", String(64), nullable=False),
    Column("phone_masked", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("signature", String(32), nullable=False),
    Column("template_id", Integer, nullable=True),
    Column("origin", String(8), nullable=False),  # api | verify
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_messages_tenant_phone", "tenant_id", "phone_hash", "id"),
    Index("ix_messages_tenant_created", "tenant_id", "created_at"),
)

VERIFY_STATUSES = ("pending", "verified", "expired", "failed")

verifications = Table(
    "verifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("phone_hash", String(64), nullable=False),
    Column("phone_enc", LargeBinary, nullable=False),  # AES-GCM: the anti-pumping listener gets the number
    Column("signature", String(32), nullable=False),
    Column("prefix", String(7), nullable=False),  # for the conversion counters only
    Column("message_id", Integer, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column("salt", String(32), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("status", String(10), nullable=False),  # pending | verified | expired | failed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("verified_at", DateTime(timezone=True), nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=True),  # the send counted and audited (idemexact_0001)
    Index("ix_verifications_tenant_phone", "tenant_id", "phone_hash", "id"),
)

verify_settings = Table(
    "verify_settings",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("length", Integer, nullable=False),
    Column("alphabet", String(64), nullable=False),
    Column("ttl_seconds", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("template_id", Integer, nullable=True),
    Column("signature", String(32), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

verify_conversion = Table(
    "verify_conversion",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("signature", String(32), primary_key=True),
    Column("prefix", String(7), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("sent", Integer, nullable=False),
    Column("verified", Integer, nullable=False),
)
