"""The audit tables (SQLAlchemy Core, on ``storage._models.Base.metadata``). Migrations
``audit_0001``/``audit_0002``/``audit_anchors_0001`` create them; this module only describes them for queries."""

from __future__ import annotations

import sqlalchemy as sa

from smsguard.storage._models import Base

GENESIS_HASH = "0" * 64
"""``prev_hash`` of event 1: the chain starts from nothing."""

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # an INTEGER PRIMARY KEY is SQLite's rowid: fastest

events = sa.Table(
    "audit_events",
    Base.metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=False),  # assigned under the chain lock: 1, 2, 3, …
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("tenant_id", sa.Integer, nullable=True),  # no foreign key: the log outlives a deleted tenant
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # canonical JSON, exactly the bytes that were hashed
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # Derived from subject/payload (so verify can check them) and indexed, for the per-message trail.
    sa.Column("batch_ref", sa.String(64), nullable=True),
    sa.Column("phone_ref", sa.String(64), nullable=True),
    # HMAC-SHA256 of ``hash`` under the chain key (``audit._mac``): re-hashing without the key shows here.
    sa.Column("mac", sa.String(64), nullable=True),
    sa.Index("ix_audit_events_tenant_ts", "tenant_id", "ts"),
    # No index on ts alone: ids follow time, and each index costs every append (the API appends per verdict).
    sa.Index("ix_audit_events_subject", "subject"),
    sa.Index("ix_audit_events_batch_ref", "batch_ref", sqlite_where=sa.text("batch_ref IS NOT NULL"),
             postgresql_where=sa.text("batch_ref IS NOT NULL")),
    sa.Index("ix_audit_events_phone_ref", "phone_ref", sqlite_where=sa.text("phone_ref IS NOT NULL"),
             postgresql_where=sa.text("phone_ref IS NOT NULL")),
)

head = sa.Table(
    "audit_head",
    Base.metadata,
    # One row (id 1): the newest event. Locking it serializes appends; it also makes a truncated tail visible.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.Column("mac", sa.String(64), nullable=True),  # over (last_id, last_hash, keyed_from): a cut tail shows
    sa.Column("keyed_from", sa.BigInteger, nullable=False),  # first event written with a MAC
)

checkpoints = sa.Table(
    "audit_checkpoints",
    Base.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("event_hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False),  # first 16 hex of SHA-256 of the raw public key
    sa.Column("signature", sa.String(128), nullable=False),  # Ed25519, hex
)

blobs = sa.Table(
    "audit_blobs",
    Base.metadata,
    # The exact bytes of a policy, lexicon bundle or model that was in force, keyed by their SHA-256.
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
)

versions = sa.Table(
    "audit_versions",
    Base.metadata,
    # Which blob a version string (as verdicts carry it) names; written when the version first comes into force.
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
)

archives = sa.Table(
    "audit_archives",
    Base.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("first_id", sa.BigInteger, nullable=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("first_prev_hash", sa.String(64), nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("checkpoint_id", sa.Integer, nullable=True),
)
