"""The anti-pumping feature's one table (SQLAlchemy Core); ``storage/migrations/versions/pumping_0001.py``
creates it.

A row is an operator's allow-list entry or a block (automatic or an operator's). SQL is the truth for both:
Redis holds only the short-lived counters, so a FLUSHDB forgets velocities but never a block. ``subject`` is
what the rule names: the keyed hash of a number or a prefix (never the digits), a tenant id, an IP address;
``label`` is how it is shown (``138****1234``, ``1380013****``, the tenant's id, the IP).
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

SCOPES = ("number", "prefix", "tenant", "ip")
ACTIONS = ("allow", "block")

pumping_rules = Table(
    "pumping_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(8), nullable=False),  # number | prefix | tenant | ip
    Column("subject", String(64), nullable=False),
    Column("label", String(64), nullable=False),
    Column("action", String(8), nullable=False),  # allow | block
    Column("code", String(48), nullable=False),  # pumping.prefix_low_conversion, pumping.operator, ...
    Column("source", String(8), nullable=False),  # auto | operator
    Column("tenant_id", Integer, nullable=True),  # the tenant whose traffic triggered an automatic block
    Column("note", Text, nullable=True),
    Column("actor", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("lifted_at", DateTime(timezone=True), nullable=True),
    Column("lifted_by", String(100), nullable=True),
    Index("ix_pumping_rules_subject", "scope", "subject"),
)
