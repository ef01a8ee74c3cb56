"""The batches feature's tables (SQLAlchemy Core); ``storage/migrations/versions/batches_0001.py`` creates them.

Phone numbers are stored three ways, never in clear: ``phone_enc`` (AES-GCM), ``phone_hash`` (keyed HMAC,
for lookups) and ``phone_masked`` (``138****1234``, for display). Money is integer micro-units of the
policy's currency (``*_micros``), so sums are exact on SQLite and PostgreSQL alike.

Recipients are written once per batch (COPY / executemany in chunks) and then only their status columns
change; their primary key ``(batch_id, seq)`` is the release order and the durable cursor's domain.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# storage's tenants table (revision 0001), declared here only for foreign keys and joins; storage owns it.
tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
)

TEMPLATE_STATUSES = ("screening", "review", "approved", "rejected", "blocked")
BATCH_STATES = ("draft", "screening", "review", "approved", "scheduled", "releasing", "sending", "done", "cancelled")
RECIPIENT_STATUSES = (
    "queued",
    "opted_out",
    "invalid",
    "capped",
    "refused",  # the anti-pumping guard said no (detail: its reason code, e.g. pumping.number_velocity)
    "deferred",
    "submitted",
    "delivered",
    "failed",
    "expired",
    "unknown",
    "rejected",
    "cancelled",
)

templates = Table(
    "sms_templates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("signature", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("variables", Text, nullable=False),  # JSON list of variable names, in order of appearance
    Column("status", String(12), nullable=False),
    Column("verdict", Text, nullable=True),  # JSON verdict of the screened sample
    Column("reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)

contact_lists = Table(
    "contact_lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("status", String(12), nullable=False),  # importing | ready | failed
    Column("encoding", String(16), nullable=False),
    Column("columns", Text, nullable=False),  # JSON list of variable column names
    Column("total", Integer, nullable=False, default=0),
    Column("valid", Integer, nullable=False, default=0),
    Column("invalid", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

contacts = Table(
    "contacts",
    metadata,
    Column("list_id", Integer, ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("line", Integer, nullable=False),
    Column("phone_hash", String(64), nullable=False),
    Column("phone_enc", LargeBinary, nullable=False),
    Column("phone_masked", String(16), nullable=False),
    Column("carrier", String(10), nullable=False),  # price key: mobile/unicom/telecom/broadnet/virtual/other
    Column("vars", Text, nullable=True),  # JSON list of values, in the list's column order
    UniqueConstraint("list_id", "phone_hash", name="uq_contacts_list_phone"),
)

contact_rejects = Table(
    "contact_rejects",
    metadata,
    Column("list_id", Integer, ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),  # invalid | duplicate
    Column("code", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("value", String(40), nullable=False),  # masked
    # the value as uploaded, vault-encrypted: shown in full to its own tenant only (consolefix_0001)
    Column("phone_enc", LargeBinary, nullable=True),
)

optouts = Table(
    "optouts",
    metadata,
    # tenant_id 0 = platform-wide (every tenant); signature "" = every signature of the tenant.
    Column("tenant_id", Integer, primary_key=True, autoincrement=False),
    Column("signature", String(32), primary_key=True),
    Column("phone_hash", String(64), primary_key=True),
    Column("phone_enc", LargeBinary, nullable=False),
    Column("phone_masked", String(16), nullable=False),
    Column("opted_out", Boolean, nullable=False),
    Column("source", String(16), nullable=False),  # mo | api | complaint | admin
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

complaints = Table(
    "complaints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False, index=True),
    Column("phone_hash", String(64), nullable=False, index=True),
    Column("phone_masked", String(16), nullable=False),
    Column("signature", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("ref", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant_id", "ref", name="uq_complaints_ref"),
)

inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False, index=True),  # 0 = no tenant known (unknown extension)
    Column("signature", String(32), nullable=False),
    Column("phone_hash", String(64), nullable=False, index=True),
    Column("phone_masked", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("gateway", String(64), nullable=False),
    Column("to_number", String(32), nullable=False),
    Column("action", String(16), nullable=False),  # opt_out | opt_in | complaint | none
    Column("ref", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # the number itself, encrypted (smppaccess_0001): an MO goes over a customer's CMPP/SMPP bind with it
    Column("phone_enc", LargeBinary, nullable=True),
    UniqueConstraint("gateway", "ref", name="uq_inbound_ref"),
)

sender_codes = Table(
    "sender_codes",
    metadata,
    # the extension appended to the channel's number for (tenant, signature): MO replies find their sender
    Column("code", String(8), primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("signature", String(32), nullable=False),
    UniqueConstraint("tenant_id", "signature", name="uq_sender_codes_tenant_sig"),
)

budgets = Table(
    "budgets",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("limit_micros", BigInteger, nullable=False),
    Column("spent_micros", BigInteger, nullable=False),  # reserved at release, refunded for unsent recipients
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("signature", String(32), nullable=False),
    Column("sender", String(8), nullable=False),
    Column("template_id", Integer, ForeignKey("sms_templates.id"), nullable=True),
    Column("list_id", Integer, ForeignKey("contact_lists.id"), nullable=True),
    Column("content", Text, nullable=True),  # content + numbers batches: the text
    Column("state", String(12), nullable=False, index=True),
    Column("schedule_at", DateTime(timezone=True), nullable=True),
    Column("total", Integer, nullable=False, default=0),
    Column("estimate_micros", BigInteger, nullable=False, default=0),
    Column("reserved_micros", BigInteger, nullable=False, default=0),
    Column("cursor", Integer, nullable=False, default=0),  # release: every seq <= cursor was handled
    Column("resume_at", DateTime(timezone=True), nullable=True),  # quiet hours: deferred recipients resume
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Column("done_at", DateTime(timezone=True), nullable=True),
    # the API's anti-pumping guard judged it at request time: the release step does not count it again
    Column("guarded", Boolean, nullable=False, default=False, server_default=false()),
    # a secret in the text (a verification code), sealed with the vault: it leaves the text once handed over
    Column("secret_enc", LargeBinary, nullable=True),  # idemexact_0001
)

batch_contents = Table(
    "batch_contents",
    metadata,
    Column("batch_id", Integer, ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("content_id", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("spans", Text, nullable=False),  # JSON [[start, end, variable], ...]: where variable values sit
    Column("segments", Integer, nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("decision", String(8), nullable=False),
    Column("verdict", Text, nullable=False),
    Column("review", String(10), nullable=False),  # none | pending | approved | rejected
    Column("reason", Text, nullable=True),
    Column("cost_micros", BigInteger, nullable=False),  # recipients × segments × their carriers' prices
    Column("review_category", String(32), nullable=True),  # the reviewer's category (consolefix_0001)
)

recipients = Table(
    "recipients",
    metadata,
    Column("batch_id", Integer, ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("phone_hash", String(64), nullable=False),
    Column("phone_enc", LargeBinary, nullable=True),  # NULL for an invalid number
    Column("phone_masked", String(40), nullable=False),
    Column("carrier", String(10), nullable=False),
    Column("content_id", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("detail", Text, nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("final_at", DateTime(timezone=True), nullable=True),
    Column("gateway", String(64), nullable=True),
    Column("gateway_ids", Text, nullable=True),
    Column("carrier_code", String(64), nullable=True),
    Index("ix_recipients_phone_hash", "phone_hash", "batch_id"),  # send records by number (consolelog_0001)
)

handovers = Table(
    "handovers",
    metadata,
    # one row per released chunk, written in the transaction that marks its recipients submitted
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("batches.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("lo", Integer, nullable=False),
    Column("hi", Integer, nullable=False),
    Column("submitted", Integer, nullable=False),
    Column("already", Integer, nullable=False),  # handed over by a run that crashed before recording it
    Column("opted_out", Integer, nullable=False),
    Column("capped", Integer, nullable=False),
    Column("first_entry", String(32), nullable=True),  # outbox stream ids of the chunk's first/last entry
    Column("last_entry", String(32), nullable=True),
    Column("worker", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Every edit of a template (template_versions_0001): pending until a platform reviewer decides; the approved
# version's body is copied into sms_templates, so the row that sends is always the approved one.
template_versions = Table(
    "sms_template_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("template_id", Integer, ForeignKey("sms_templates.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("signature", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(12), nullable=False),  # pending | approved | rejected
    Column("reason", Text, nullable=True),
    Column("actor", String(100), nullable=False),
    Column("reviewer", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("template_id", "version", name="uq_sms_template_versions"),
)

# Recipients counted per batch × status × carrier × failure code, with the cost of those handed to a carrier: kept
# by triggers on recipients in the transaction of every change (consolestats_0001), read by the console's charts.
recipient_rollup = Table(
    "recipient_rollup",
    metadata,
    Column("batch_id", Integer, primary_key=True, autoincrement=False),
    Column("status", String(10), primary_key=True),
    Column("carrier", String(10), primary_key=True),
    Column("code", String(64), primary_key=True),  # failed states: carrier code, else detail, else status; '' else
    Column("n", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
)
