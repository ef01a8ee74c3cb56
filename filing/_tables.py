"""The filing feature's tables; ``storage/migrations/versions/filing_0001.py`` creates them.

Qualification documents are stored encrypted (AES-GCM, ``_documents.py``) in SQL, never as files under a
web root, so nothing can serve them but the routes that check the tenant or the reviewer.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

tenants = Table("tenants", metadata, Column("id", Integer, primary_key=True))  # storage's, for foreign keys

SIGNATURE_STATUSES = ("pending", "approved", "rejected")
CHANNEL_STATUSES = ("pending", "filed", "rejected")

signatures = Table(
    "filed_signatures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(20), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("use", String(8), nullable=False),  # self | others
    Column("status", String(12), nullable=False),
    Column("reason", Text, nullable=True),  # the reviewer's, shown to the customer
    Column("reviewer", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("tenant_id", "name", name="uq_filed_signatures_name"),
)

documents = Table(
    "filed_signature_documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("signature_id", Integer, ForeignKey("filed_signatures.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("filename", String(120), nullable=False),  # sanitized
    Column("content_type", String(40), nullable=False),  # from the magic bytes, never the client's
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data_enc", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

channel_status = Table(
    "filed_signature_channels",
    metadata,
    Column("signature_id", Integer, ForeignKey("filed_signatures.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("status", String(12), nullable=False),
    Column("note", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
