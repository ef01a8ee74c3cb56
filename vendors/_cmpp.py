"""CMPP access for customers (issue 18, point 3): CMPP accounts per tenant, a :class:`SubmitHandler` that makes
each SUBMIT a smsguard batch (so screening, review, opt-outs, caps, budget and channels apply as to any batch),
and the status reports that go back over the account's binds.

A SUBMIT is answered only after its batch and the ``cmpp_messages`` row (Msg_Id -> batch, seq) are committed.
Reports are at-least-once: :func:`pending_reports` reads final states not reported yet, the ``cmpp`` role
sends them over a live bind and only then marks them reported; an account with no bind keeps them in SQL
until it connects again.

The secret is stored ENCRYPTED (the deployment's phone encryption key), not hashed: CONNECT's
AuthenticatorSource is an MD5 over the secret itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import string
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, and_, insert, select, update

from smsguard import audit, batches
from smsguard.core import NotFoundError, SmsguardError
from smsguard.phones import PhoneVault
from smsguard.sending import CmppAccount, CustomerSubmit

from ._revoke import revoke
from ._tables import cmpp_accounts, cmpp_messages, recipients, tenants

log = logging.getLogger("smsguard.vendors.cmpp")

STAT = {"delivered": "DELIVRD", "failed": "UNDELIV", "expired": "EXPIRED", "unknown": "UNKNOWN",
        "rejected": "REJECTD", "opted_out": "REJECTD", "capped": "REJECTD", "cancelled": "REJECTD"}
"""A recipient's final state -> the CMPP report's Stat (7 characters)."""


@dataclasses.dataclass(frozen=True, slots=True)
class CmppListing:
    sp_id: str
    tenant: str
    max_connections: int
    window: int
    rate: float
    label: str
    created_at: datetime
    revoked_at: datetime | None


def create_account(
    db: Engine, vault: PhoneVault, tenant: str, *, sp_id: str | None = None, max_connections: int = 2,
    window: int = 16, rate: float = 100.0, label: str = "", actor: str = "cli",
) -> tuple[CmppAccount, str]:
    """A new CMPP account for ``tenant``; returns it and its secret (shown once)."""
    sp_id = sp_id or "".join(secrets.choice(string.digits) for _ in range(6))
    if len(sp_id) != 6 or not sp_id.isascii() or not sp_id.isalnum():
        raise SmsguardError("Source_Addr (SP_Id) is 6 letters or digits", where="sp_id", code="cmpp.sp_id")
    if not (1 <= max_connections <= 64 and 1 <= window <= 1024 and 0 < rate <= 100_000):
        raise SmsguardError("connections 1-64, window 1-1024, rate 0-100000 per second", where="limits",
                            code="cmpp.limits")
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
    with db.begin() as conn:
        row = conn.execute(select(tenants.c.id).where(tenants.c.name == tenant)).one_or_none()
        if row is None:
            raise NotFoundError(f"no tenant {tenant!r}", where="tenant", code="tenant.not_found")
        if conn.execute(select(cmpp_accounts.c.id).where(cmpp_accounts.c.sp_id == sp_id)).first() is not None:
            raise SmsguardError(f"Source_Addr {sp_id} is taken", where="sp_id", code="cmpp.sp_id_taken")
        aid = conn.execute(
            insert(cmpp_accounts).values(tenant_id=row.id, sp_id=sp_id, secret_enc=vault.encrypt(secret),
                                         max_connections=max_connections, window=window, rate=rate,
                                         label=label[:200], created_at=datetime.now(UTC))
            .returning(cmpp_accounts.c.id)
        ).scalar_one()
        audit.append(conn, event_type="cmpp.account_created", actor=actor, tenant_id=row.id,
                     subject=f"cmpp_account:{aid}",
                     payload={"sp_id": sp_id, "max_connections": max_connections, "window": window, "rate": rate})
    return CmppAccount(sp_id, secret, tenant, max_connections, window, rate), secret


def live_accounts(db: Engine, vault: PhoneVault) -> list[CmppAccount]:
    """Every live account, secrets decrypted (one that no longer decrypts is left out, as if revoked)."""
    with db.connect() as conn:
        rows = conn.execute(select(cmpp_accounts, tenants.c.name.label("tenant"))
                            .join(tenants, tenants.c.id == cmpp_accounts.c.tenant_id)
                            .where(cmpp_accounts.c.revoked_at.is_(None))).all()
    out = []
    for r in rows:
        try:
            secret = vault.decrypt(r.secret_enc)
        except (InvalidTag, ValueError):
            log.error("CMPP account %s: its secret does not decrypt with the configured keys", r.sp_id)
            continue
        out.append(CmppAccount(r.sp_id, secret, r.tenant, r.max_connections, r.window, r.rate))
    return out


def list_accounts(db: Engine, tenant: str) -> list[CmppListing]:
    with db.connect() as conn:
        rows = conn.execute(select(cmpp_accounts, tenants.c.name.label("tenant"))
                            .join(tenants, tenants.c.id == cmpp_accounts.c.tenant_id)
                            .where(tenants.c.name == tenant).order_by(cmpp_accounts.c.id)).all()
    return [CmppListing(r.sp_id, r.tenant, r.max_connections, r.window, r.rate, r.label, r.created_at, r.revoked_at)
            for r in rows]


def revoke_account(db: Engine, sp_id: str, *, actor: str = "cli") -> int:
    return revoke(db, cmpp_accounts, cmpp_accounts.c.sp_id, sp_id, event_type="cmpp.account_revoked",
                  subject="cmpp_account", actor=actor)


class BatchSubmitHandler:
    """A SUBMIT -> a content + numbers batch, as the HTTP API makes one; the decision maps to the result."""

    def __init__(self, ctx: batches.Context) -> None:
        self.ctx = ctx
        self._ids: dict[str, tuple[int, int]] = {}  # sp_id -> (account id, tenant id)

    async def on_submit(self, submit: CustomerSubmit) -> str:
        return await asyncio.to_thread(self.submit, submit)

    def _account(self, sp_id: str) -> tuple[int, int]:
        if sp_id not in self._ids:
            with self.ctx.db.connect() as conn:
                row = conn.execute(select(cmpp_accounts.c.id, cmpp_accounts.c.tenant_id)
                                   .where(cmpp_accounts.c.sp_id == sp_id)).one()
            self._ids[sp_id] = (row.id, row.tenant_id)
        return self._ids[sp_id]

    def submit(self, submit: CustomerSubmit) -> str:
        ctx, sp_id = self.ctx, submit.account.sp_id
        account_id, tenant_id = self._account(sp_id)
        actor = f"cmpp:{sp_id}"
        numbers = list(submit.phones)
        try:
            batch = batches.create_batch(ctx, tenant_id, name="cmpp submit", content=submit.text, numbers=numbers,
                                         draft=True, actor=actor)
        except SmsguardError as e:
            log.info("CMPP SUBMIT from %s refused: %s", sp_id, e.message)
            return "blocked"
        bid = batch["id"]
        opted = []
        for raw in numbers:
            try:
                st = batches.optout_status(ctx, phone=batches.parse_phone(raw), tenant_id=tenant_id,
                                           signature=batch.get("signature") or "")
                opted.append(any(st.values()))
            except batches.InvalidPhone:
                opted.append(False)
        if opted and all(opted):
            batches.cancel_batch(ctx, tenant_id, bid, actor=actor, reason="every recipient opted out")
            return "opted_out"
        now = datetime.now(UTC)
        with ctx.db.begin() as conn:  # Msg_Id -> (batch, seq) committed before the SUBMIT_RESP
            conn.execute(insert(cmpp_messages), [
                {"msg_id": str(submit.msg_ids[0]), "account_id": account_id, "tenant_id": tenant_id,
                 "batch_id": bid, "seq": seq, "phone_enc": ctx.vault.encrypt(raw), "src_id": submit.src_id[:21],
                 "registered_delivery": submit.registered_delivery, "created_at": now}
                for seq, raw in enumerate(numbers, start=1)])
            audit.append(conn, event_type="cmpp.submit", actor=actor, tenant_id=tenant_id, subject=f"batch:{bid}",
                         payload={"batch_id": bid, "msg_id": str(submit.msg_ids[0]), "numbers": len(numbers)})
        try:
            batch = batches.submit_batch(ctx, tenant_id, bid, numbers=numbers, actor=actor)
        except batches.BudgetExceeded as e:
            batches.cancel_batch(ctx, tenant_id, bid, actor=actor, reason=e.message[:500])
            _mark_reported(ctx.db, bid)
            return "no_budget"
        except SmsguardError as e:
            batches.cancel_batch(ctx, tenant_id, bid, actor=actor, reason=e.message[:500])
            _mark_reported(ctx.db, bid)
            log.info("CMPP SUBMIT from %s refused: %s", sp_id, e.message)
            return "blocked"
        if any(c["decision"] == "block" or c["review"] == "rejected" for c in batch["contents"]):
            _mark_reported(ctx.db, bid)  # answered with result 20: no report follows
            return "blocked"
        return "accepted"


def _mark_reported(db: Engine, batch_id: int) -> None:
    with db.begin() as conn:
        conn.execute(update(cmpp_messages).where(cmpp_messages.c.batch_id == batch_id)
                     .values(reported_at=datetime.now(UTC)))


@dataclasses.dataclass(frozen=True, slots=True)
class PendingReport:
    sp_id: str
    msg_id: int
    batch_id: int
    seq: int
    phone: str
    stat: str
    src_id: str


def pending_reports(db: Engine, vault: PhoneVault, sp_ids: list[str], limit: int = 500) -> list[PendingReport]:
    """Final states of these accounts' messages not reported yet, oldest first."""
    if not sp_ids:
        return []
    with db.connect() as conn:
        rows = conn.execute(
            select(cmpp_accounts.c.sp_id, cmpp_messages.c.msg_id, cmpp_messages.c.batch_id, cmpp_messages.c.seq,
                   cmpp_messages.c.phone_enc, cmpp_messages.c.src_id, recipients.c.status)
            .join(cmpp_accounts, cmpp_accounts.c.id == cmpp_messages.c.account_id)
            .join(recipients, and_(recipients.c.batch_id == cmpp_messages.c.batch_id,
                                   recipients.c.seq == cmpp_messages.c.seq))
            .where(cmpp_accounts.c.sp_id.in_(sp_ids), cmpp_messages.c.reported_at.is_(None),
                   cmpp_messages.c.registered_delivery == 1, recipients.c.status.in_(list(STAT)))
            .order_by(cmpp_messages.c.created_at).limit(limit)
        ).all()
    return [PendingReport(r.sp_id, int(r.msg_id), r.batch_id, r.seq, vault.decrypt(r.phone_enc), STAT[r.status],
                          r.src_id) for r in rows]


def mark_reported(db: Engine, reports: list[PendingReport]) -> None:
    if not reports:
        return
    at = datetime.now(UTC)
    with db.begin() as conn:
        for r in reports:
            conn.execute(update(cmpp_messages).where(cmpp_messages.c.batch_id == r.batch_id,
                                                     cmpp_messages.c.seq == r.seq).values(reported_at=at))
