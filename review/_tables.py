"""The review queue's tables (SQLAlchemy Core, on the system of record's metadata).

SQL is the truth for review: an item, every reviewer action on it, its final decision and the training
label it becomes all live here. Redis only holds the dispatch state (stream entries and leases), which
``review._queue`` rebuilds from these tables when Redis loses it.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from smsguard.storage._models import Base

metadata = Base.metadata

# Item status: open ones are "pending" (any reviewer), "escalated" (senior or above), "second" (four-eyes: one
# approval recorded, a distinct senior-or-above approver needed); final ones are "approved" and "rejected".
OPEN_STATUSES = ("pending", "escalated", "second")
FINAL_STATUSES = ("approved", "rejected")

review_items = Table(
    "review_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("source", String(32), nullable=False),
    Column("source_ref", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("verdict", Text, nullable=False),  # the engine verdict as JSON (reasons with spans in `text`)
    Column("category", String(32), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("score", Float, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("sample_recipients", Text, nullable=False),  # JSON list, masked before it is stored
    Column("required_approvals", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("decision_category", String(32), nullable=True),
    Column("decision_reason_code", String(40), nullable=True),  # policy.yaml review.reasons code, if one was chosen
    Column("search_text", Text, nullable=True),  # the folded text, for search (the engine's fold view)
    # Dispatch state mirrored from Redis: the stream entry id and the Redis "epoch" it was added under. A
    # flushed Redis gets a new epoch, so every open item whose epoch differs is re-driven.
    Column("stream_id", String(32), nullable=True),
    Column("dispatch_epoch", String(32), nullable=True),
    # Undo grace window (policy.yaml review.undo_seconds): a final decision whose release_at is set is "pending
    # release": its reviewer may undo it until then (the item goes back to undo_status); at release_at the
    # release worker runs the source's handler, writes the label and webhooks, then clears release_at.
    Column("release_at", DateTime(timezone=True), nullable=True),
    Column("undo_status", String(16), nullable=True),
    UniqueConstraint("source", "source_ref", name="uq_review_items_source_ref"),
    Index("ix_review_items_status_prio", "status", "priority", "created_at"),
    Index("ix_review_items_status_sev", "status", "severity", "priority", "created_at"),
    Index("ix_review_items_content_hash", "content_hash"),
    Index("ix_review_items_dispatch", "dispatch_epoch"),
    Index("ix_review_items_decided_at", "decided_at"),
    Index("ix_review_items_release_at", "release_at"),
)

review_actions = Table(
    "review_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("review_items.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("review_users.id"), nullable=True),
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(16), nullable=False),  # approve | reject | escalate
    Column("reason", Text, nullable=True),
    Column("reason_code", String(40), nullable=True),
    Column("category", String(32), nullable=True),
    Column("item_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

review_labels = Table(
    "review_labels",
    metadata,
    Column("item_id", Integer, ForeignKey("review_items.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("label", Integer, nullable=False),  # 1 = spam/bad (rejected), 0 = ham (approved)
    Column("category", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

review_users = Table(
    "review_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2id (argon2-cffi), never the password
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
)

review_sessions = Table(
    "review_sessions",
    metadata,
    # litestar's server-side session id; sessions live in SQL so a Redis flush does not log reviewers out
    Column("key", String(128), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
)
