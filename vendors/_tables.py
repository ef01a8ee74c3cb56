"""The vendor-compatible API's tables (SQLAlchemy Core); ``storage/migrations/versions/vendors_0001.py`` creates
them.

A vendor credential's secret is stored ENCRYPTED (the deployment's phone encryption key, AES-256-GCM), not
hashed: verifying a TC3-HMAC-SHA256 / ACS3-HMAC-SHA256 / HMAC-SHA1 request signature needs the secret itself.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, ForeignKey, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

# Other features' tables, declared with the columns read here only (for foreign keys, joins and the status
# pulls); storage (tenants) and batches (the rest) own and migrate them.
tenants = Table("tenants", metadata, Column("id", Integer, primary_key=True), Column("name", String(64)))
batches = Table(
    "batches", metadata, Column("id", Integer, primary_key=True), Column("tenant_id", Integer),
    Column("template_id", Integer), Column("content", Text), Column("state", String(12)),
    Column("created_at", DateTime(timezone=True)),
    Column("lease_owner", String(64)), Column("lease_until", DateTime(timezone=True)),  # cancel_sm checks the lease
)
templates = Table(
    "sms_templates", metadata, Column("id", Integer, primary_key=True), Column("tenant_id", Integer),
    Column("kind", String(16)), Column("signature", String(32)), Column("body", Text), Column("status", String(12)),
    Column("reason", Text),
)
recipients = Table(
    "recipients", metadata, Column("batch_id", Integer, primary_key=True), Column("seq", Integer, primary_key=True),
    Column("phone_hash", String(64)), Column("phone_masked", String(40)), Column("status", String(10)),
    Column("detail", Text), Column("submitted_at", DateTime(timezone=True)),
    Column("final_at", DateTime(timezone=True)),
    Column("carrier_code", String(64)), Column("content_id", Integer),
)
batch_contents = Table(
    "batch_contents", metadata, Column("batch_id", Integer, primary_key=True),
    Column("content_id", Integer, primary_key=True), Column("text", Text), Column("segments", Integer),
    Column("decision", String(8)), Column("verdict", Text), Column("review", String(10)), Column("reason", Text),
)
inbound_messages = Table(
    "inbound_messages", metadata, Column("id", Integer, primary_key=True), Column("tenant_id", Integer),
    Column("signature", String(32)), Column("phone_masked", String(16)), Column("text", Text),
    Column("to_number", String(32)), Column("created_at", DateTime(timezone=True)),
    Column("phone_enc", LargeBinary),
)

VENDORS = ("tencent", "aliyun")

credentials = Table(
    "vendor_credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("vendor", String(8), nullable=False),  # tencent | aliyun
    Column("access_id", String(64), nullable=False, unique=True),  # SecretId / AccessKeyId
    Column("secret_enc", LargeBinary, nullable=False),  # SecretKey / AccessKeySecret, AES-GCM
    Column("app_id", String(32), nullable=False),  # Tencent SmsSdkAppId ("" for Aliyun)
    Column("label", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

sends = Table(
    "vendor_sends",
    metadata,
    # one row per batch a vendor-style send created: what the status pulls and QuerySendDetails read
    Column("batch_id", Integer, ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("credential_id", Integer, ForeignKey("vendor_credentials.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("tenant_id", Integer, nullable=False, index=True),
    Column("biz_id", String(32), nullable=False, index=True),  # Aliyun BizId: SendBatchSms groups share one
    Column("template_ref", String(64), nullable=False),  # as the client named it: "12" or "SMS_12"
    Column("session_context", Text, nullable=True),  # Tencent SessionContext / Aliyun OutId, echoed back
    Column("created_at", DateTime(timezone=True), nullable=False),
)

pulled = Table(
    "vendor_pulled",
    metadata,
    # the delivery reports PullSmsSendStatus has answered: each is pulled once, as Tencent does
    Column("credential_id", Integer, ForeignKey("vendor_credentials.id", ondelete="CASCADE"), primary_key=True),
    Column("batch_id", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

cursors = Table(
    "vendor_cursors",
    metadata,
    # PullSmsReplyStatus: the last inbound_messages id answered per credential
    Column("credential_id", Integer, ForeignKey("vendor_credentials.id", ondelete="CASCADE"), primary_key=True),
    Column("last_id", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

cmpp_accounts = Table(
    "cmpp_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("sp_id", String(6), nullable=False, unique=True),  # CONNECT's Source_Addr
    Column("secret_enc", LargeBinary, nullable=False),  # AES-GCM: CMPP auth is an MD5 over the secret itself
    Column("max_connections", Integer, nullable=False),
    Column("window", Integer, nullable=False),
    Column("rate", Float, nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

cmpp_messages = Table(
    "cmpp_messages",
    metadata,
    # a SUBMIT's recipients: Msg_Id (unsigned 64 bits, as text) -> (batch, seq); reported_at once its report went
    Column("batch_id", Integer, ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("msg_id", String(20), nullable=False, index=True),
    Column("account_id", Integer, ForeignKey("cmpp_accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("tenant_id", Integer, nullable=False),
    Column("phone_enc", LargeBinary, nullable=False),  # the report's Dest_terminal_Id: encrypted, never plain
    Column("src_id", String(21), nullable=False),
    Column("registered_delivery", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=True),
    # smppaccess_0001: the server it came in on (its reports go back over that server's binds), and a long
    # message's other parts' ids (space-separated): each part of it is reported
    Column("protocol", String(4), nullable=False, server_default="cmpp"),
    Column("part_ids", Text, nullable=True),
)

access_mo = Table(
    "access_mo",
    metadata,
    # an MO (inbound_messages row) written to a bind of one of its tenant's access accounts (smppaccess_0001);
    # one not here yet waits for a bind
    Column("inbound_id", Integer, ForeignKey("inbound_messages.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", Integer, ForeignKey("cmpp_accounts.id", ondelete="CASCADE"), nullable=False),
    Column("protocol", String(4), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=False),
)

access_reports = Table(
    "access_reports",
    metadata,
    # a report owed to an access account that belongs to no recipient row (accessreports_0001): the REJECTD of
    # each part of a long message refused after its parts were answered 0; kept until written to a bind
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("cmpp_accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("protocol", String(4), nullable=False),
    Column("msg_id", String(20), nullable=False, index=True),
    Column("phone_enc", LargeBinary, nullable=False),
    Column("src_id", String(21), nullable=False),
    Column("stat", String(7), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=True),
)

access_nodes = Table(
    "access_nodes",
    metadata,
    # one row per start of a CMPP / SMPP server for customers (accessnodes_0001): its id (mod 4096) is the node
    # number in the Msg_Ids it hands out, so no two live servers of a deployment hand out the same id
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("protocol", String(8), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)
