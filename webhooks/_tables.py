"""The webhooks feature's tables (SQLAlchemy Core); ``storage/migrations/versions/webhooks_0001.py`` creates them.

* ``webhook_endpoints``: a tenant's receivers (URL, subscribed event types, signing secret and, during a
  rotation, the previous secret until ``old_secret_until``). Deleting one sets ``deleted_at``: its delivery
  log stays readable and nothing more is sent to it.
* ``webhook_events``: the outbox. One row per event, written in the transaction of the change it reports.
  ``seq`` is the outbox order; ``event_id`` is the stable id a receiver deduplicates on.
* ``webhook_deliveries``: one row per (event, endpoint) to deliver, the dispatcher's work queue: ``status``
  pending → delivered | dead (| cancelled when the endpoint is deleted); ``next_at`` is when it is due,
  ``lease_owner`` / ``lease_until`` the dispatcher holding it. A resend adds a new row for the same event.
* ``webhook_attempts``: every HTTP attempt (status code, latency, error): the delivery log.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# storage's tenants table (revision 0001), declared here only for the foreign keys; storage owns it.
tenants = Table("tenants", metadata, Column("id", Integer, primary_key=True))

endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("url", String(2000), nullable=False),
    Column("event_types", Text, nullable=False),  # JSON list; ["*"] = every type
    Column("description", String(200), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("old_secret", String(100), nullable=True),
    Column("old_secret_until", DateTime(timezone=True), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("max_concurrency", Integer, nullable=False),
    Column("timeout", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
)

events = Table(
    "webhook_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False, unique=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("event_type", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("created_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_seq", Integer, ForeignKey("webhook_events.seq", ondelete="CASCADE"), nullable=False, index=True),
    Column("endpoint_id", Integer, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", Integer, nullable=False),
    Column("subject", String(200), nullable=False),
    Column("status", String(10), nullable=False),  # pending | delivered | dead | cancelled
    Column("attempts", Integer, nullable=False),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_latency_ms", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),  # the retry window starts here
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_at"),
    Index("ix_webhook_deliveries_order", "endpoint_id", "subject", "status", "id"),
    Index("ix_webhook_deliveries_endpoint_due", "endpoint_id", "status", "next_at"),
)

attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("error", Text, nullable=True),
    Column("dispatcher", String(64), nullable=False),
)
