"""CMPP access for customers (issue 18, point 3): CMPP accounts per tenant, the :class:`SubmitHandler` s that make
SUBMITs smsguard batches (so screening, review, opt-outs, caps, budget and channels apply as to any batch),
and the status reports that go back over the account's binds.

:class:`GroupedSubmitHandler` (the ``cmpp`` role's) collects the SUBMITs of a few milliseconds into one batch
per (account, signature): one screening call for its distinct texts and a handful of transactions instead of
~6 per SUBMIT (75 SUBMIT/s before, bench/cmpp_server.py). :class:`BatchSubmitHandler` is one SUBMIT, one batch.

A SUBMIT is answered only after its batch and the ``cmpp_messages`` row (Msg_Id -> batch, seq) are committed.
Reports are at-least-once: :func:`pending_reports` reads final states not reported yet, the ``cmpp`` role
sends them over a live bind and only then marks them reported; an account with no bind keeps them in SQL
until it connects again.

The secret is stored ENCRYPTED (the deployment's phone encryption key), not hashed: CONNECT's
AuthenticatorSource is an MD5 over the secret itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, and_, case, func, insert, select, update

from smsguard import audit, batches, billing
from smsguard.core import NotFoundError, SmsguardError
from smsguard.phones import PhoneVault
from smsguard.sending import CmppAccount, CustomerSubmit

from ._revoke import revoke
from ._tables import (
    access_mo,
    access_nodes,
    access_reports,
    cmpp_accounts,
    cmpp_messages,
    inbound_messages,
    recipients,
    tenants,
)
from ._tables import batches as batch_rows

log = logging.getLogger("smsguard.vendors.cmpp")

STAT = {
    "delivered": "DELIVRD",
    "failed": "UNDELIV",
    "expired": "EXPIRED",
    "unknown": "UNKNOWN",
    "rejected": "REJECTD",
    "opted_out": "REJECTD",
    "capped": "REJECTD",
    "cancelled": "REJECTD",
}
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
    db: Engine,
    vault: PhoneVault,
    tenant: str,
    *,
    sp_id: str | None = None,
    max_connections: int = 2,
    window: int = 16,
    rate: float = 100.0,
    label: str = "",
    actor: str = "cli",
    secret_length: int = 16,
) -> tuple[CmppAccount, str]:
    """A new access account for ``tenant`` (CMPP Source_Addr / SMPP system_id); returns it and its secret (shown
    once). ``secret_length`` 8 fits SMPP 3.4's password (a 9-octet C-Octet String); CMPP takes any."""
    sp_id = sp_id or "".join(secrets.choice(string.digits) for _ in range(6))
    if len(sp_id) != 6 or not sp_id.isascii() or not sp_id.isalnum():
        raise SmsguardError("Source_Addr (SP_Id) is 6 letters or digits", where="sp_id", code="cmpp.sp_id")
    if not (1 <= max_connections <= 64 and 1 <= window <= 1024 and 0 < rate <= 100_000):
        raise SmsguardError(
            "connections 1-64, window 1-1024, rate 0-100000 per second", where="limits", code="cmpp.limits"
        )
    if not 8 <= secret_length <= 32:
        raise SmsguardError("the secret is 8-32 characters", where="secret_length", code="cmpp.limits")
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(secret_length))
    with db.begin() as conn:
        row = conn.execute(select(tenants.c.id).where(tenants.c.name == tenant)).one_or_none()
        if row is None:
            raise NotFoundError(f"no tenant {tenant!r}", where="tenant", code="tenant.not_found")
        if conn.execute(select(cmpp_accounts.c.id).where(cmpp_accounts.c.sp_id == sp_id)).first() is not None:
            raise SmsguardError(f"Source_Addr {sp_id} is taken", where="sp_id", code="cmpp.sp_id_taken")
        aid = conn.execute(
            insert(cmpp_accounts)
            .values(
                tenant_id=row.id,
                sp_id=sp_id,
                secret_enc=vault.encrypt(secret),
                max_connections=max_connections,
                window=window,
                rate=rate,
                label=label[:200],
                created_at=datetime.now(UTC),
            )
            .returning(cmpp_accounts.c.id)
        ).scalar_one()
        audit.append(
            conn,
            event_type="cmpp.account_created",
            actor=actor,
            tenant_id=row.id,
            subject=f"cmpp_account:{aid}",
            payload={"sp_id": sp_id, "max_connections": max_connections, "window": window, "rate": rate},
        )
    return CmppAccount(sp_id, secret, tenant, max_connections, window, rate), secret


def live_accounts(db: Engine, vault: PhoneVault) -> list[CmppAccount]:
    """Every live account, secrets decrypted (one that no longer decrypts is left out, as if revoked)."""
    with db.connect() as conn:
        rows = conn.execute(
            select(cmpp_accounts, tenants.c.name.label("tenant"))
            .join(tenants, tenants.c.id == cmpp_accounts.c.tenant_id)
            .where(cmpp_accounts.c.revoked_at.is_(None))
        ).all()
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
        rows = conn.execute(
            select(cmpp_accounts, tenants.c.name.label("tenant"))
            .join(tenants, tenants.c.id == cmpp_accounts.c.tenant_id)
            .where(tenants.c.name == tenant)
            .order_by(cmpp_accounts.c.id)
        ).all()
    return [
        CmppListing(r.sp_id, r.tenant, r.max_connections, r.window, r.rate, r.label, r.created_at, r.revoked_at)
        for r in rows
    ]


def revoke_account(db: Engine, sp_id: str, *, actor: str = "cli") -> int:
    return revoke(db, cmpp_accounts, cmpp_accounts.c.sp_id, sp_id, event_type="cmpp.account_revoked",
                  subject="cmpp_account", actor=actor)


def take_node(db: Engine, protocol: str) -> int:
    """A new node number for a CMPP / SMPP server starting now: the id of a new ``access_nodes`` row (never
    reused; the server folds it, modulo 4096, into its Msg_Ids: sending/_access.py)."""
    with db.begin() as conn:
        return int(conn.execute(
            insert(access_nodes)
            .values(protocol=protocol[:8], host=socket.gethostname()[:255], pid=os.getpid(),
                    started_at=datetime.now(UTC))
            .returning(access_nodes.c.id)
        ).scalar_one())


class BatchSubmitHandler:
    """A SUBMIT -> a content + numbers batch, as the HTTP API makes one; the decision maps to the result."""

    def __init__(self, ctx: batches.Context) -> None:
        self.ctx = ctx
        self._ids: dict[str, tuple[int, int]] = {}  # sp_id -> (account id, tenant id)

    async def on_submit(self, submit: CustomerSubmit) -> str:
        return await asyncio.to_thread(self.submit, submit)

    async def take_node(self, server: str) -> int:
        """The node number of a server starting now (:func:`take_node`)."""
        return await asyncio.to_thread(take_node, self.ctx.db, server.lower())

    async def on_refused(self, submit: CustomerSubmit, stat: str = "REJECTD") -> None:
        """A long message refused after its parts were answered 0: each part's report is owed, kept in SQL."""
        await asyncio.to_thread(owe_reports, self.ctx.db, self.ctx.vault, self._account(submit.account.sp_id)[0],
                                submit, stat)

    async def on_query(self, account: CmppAccount, msg_id: int) -> tuple[str, datetime | None] | None:
        """SMPP query_sm: (the recipient's status, when it became final) of one of the account's messages."""
        return await asyncio.to_thread(query_message, self.ctx.db, self._account(account.sp_id)[0], msg_id)

    async def on_cancel(self, account: CmppAccount, msg_id: int, protocol: str = "smpp") -> str:
        """SMPP cancel_sm / CMPP_CANCEL: ``cancelled``, ``not_found`` or ``too_late`` (handed to a carrier, final,
        or being handed over right now)."""
        return await asyncio.to_thread(cancel_message, self.ctx, self._account(account.sp_id), msg_id,
                                       actor=f"{protocol}:{account.sp_id}")

    async def on_stats(self, account: CmppAccount, day: date) -> tuple[int, ...]:
        """CMPP_QUERY: the account's counts for ``day`` (:func:`account_stats`)."""
        return await asyncio.to_thread(account_stats, self.ctx.db, self._account(account.sp_id)[0], day)

    def _account(self, sp_id: str) -> tuple[int, int]:
        if sp_id not in self._ids:
            with self.ctx.db.connect() as conn:
                row = conn.execute(
                    select(cmpp_accounts.c.id, cmpp_accounts.c.tenant_id).where(cmpp_accounts.c.sp_id == sp_id)
                ).one()
            self._ids[sp_id] = (row.id, row.tenant_id)
        return self._ids[sp_id]

    def submit(self, submit: CustomerSubmit) -> str:
        ctx, sp_id = self.ctx, submit.account.sp_id
        account_id, tenant_id = self._account(sp_id)
        actor = f"{submit.protocol}:{sp_id}"
        numbers = list(submit.phones)
        try:
            batch = batches.create_batch(
                ctx, tenant_id, name="cmpp submit", content=submit.text, numbers=numbers, draft=True, actor=actor
            )
        except SmsguardError as e:
            log.info("CMPP SUBMIT from %s refused: %s", sp_id, e.message)
            return "blocked"
        bid = batch["id"]
        opted = []
        for raw in numbers:
            try:
                st = batches.optout_status(
                    ctx, phone=batches.parse_phone(raw), tenant_id=tenant_id, signature=batch.get("signature") or ""
                )
                opted.append(any(st.values()))
            except batches.InvalidPhone:
                opted.append(False)
        if opted and all(opted):
            batches.cancel_batch(ctx, tenant_id, bid, actor=actor, reason="every recipient opted out")
            return "opted_out"
        now = datetime.now(UTC)
        with ctx.db.begin() as conn:  # Msg_Id -> (batch, seq) committed before the SUBMIT_RESP
            conn.execute(
                insert(cmpp_messages),
                [
                    {
                        "msg_id": str(submit.msg_ids[0]),
                        "account_id": account_id,
                        "tenant_id": tenant_id,
                        "batch_id": bid,
                        "seq": seq,
                        "phone_enc": ctx.vault.encrypt(raw),
                        "src_id": submit.src_id[:21],
                        "registered_delivery": submit.registered_delivery,
                        "created_at": now,
                        "reported_at": HELD,
                        "protocol": submit.protocol,
                        "part_ids": _part_ids(submit),
                    }
                    for seq, raw in enumerate(numbers, start=1)
                ],
            )
            audit.append(
                conn,
                event_type="cmpp.submit",
                actor=actor,
                tenant_id=tenant_id,
                subject=f"batch:{bid}",
                payload={"batch_id": bid, "msg_id": str(submit.msg_ids[0]), "numbers": len(numbers)},
            )
        try:
            batch = batches.submit_batch(ctx, tenant_id, bid, numbers=numbers, actor=actor)
        except (batches.BudgetExceeded, billing.InsufficientBalance) as e:
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
        _release_reports(ctx.db, bid, None)
        return "accepted"


class GroupedSubmitHandler:
    """SUBMITs that arrive together become ONE batch per (account, signature): concurrent SUBMITs (every
    connection's window) are collected for ``linger`` seconds (longer while they keep arriving, up to
    ``max_linger``), or while the previous group is being written, and go through one opt-out query, one
    screening call (each distinct text once), and a handful of SQL transactions together. Each SUBMIT is still
    answered on its own and only after the commit, with what the HTTP API would decide for it alone: blocked
    (its text), opted out (all its numbers), or accepted.

    ``writers`` groups are written at once: 2 on PostgreSQL (one computes while the other waits on the
    database), 1 on SQLite (one writer at a time anyway).

    A group over the budget is split up: its SUBMITs go through :class:`BatchSubmitHandler` one by one, so the
    ones that fit are still sent. Anything unusual (no 【signature】, ``${``) takes that path as well."""

    def __init__(
        self,
        ctx: batches.Context,
        *,
        linger: float = 0.004,
        max_linger: float = 0.03,
        max_group: int = 2000,
        writers: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.single = BatchSubmitHandler(ctx)
        self.linger, self.max_linger, self.max_group = linger, max_linger, max_group
        self.writers = writers or (2 if ctx.db.dialect.name == "postgresql" else 1)
        self._queue: list[tuple[CustomerSubmit, asyncio.Future[str]]] = []
        self._wake: asyncio.Event | None = None
        self._collecting: asyncio.Lock | None = None
        self._runners: list[asyncio.Task[None]] = []
        self.groups = 0  # how many groups were written (the tests and the benchmark read it)

    async def on_submit(self, submit: CustomerSubmit) -> str:
        loop = asyncio.get_running_loop()
        if not self._runners or any(r.done() for r in self._runners) or self._runners[0].get_loop() is not loop:
            for r in self._runners:
                r.cancel()
            self._wake, self._queue = asyncio.Event(), []  # a new loop (a restarted role, the benchmark's runs)
            self._collecting = asyncio.Lock()
            self._runners = [asyncio.ensure_future(self._run()) for _ in range(self.writers)]
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((submit, fut))
        self._wake.set()
        return await fut

    async def on_refused(self, submit: CustomerSubmit, stat: str = "REJECTD") -> None:
        await self.single.on_refused(submit, stat)

    async def take_node(self, server: str) -> int:
        return await self.single.take_node(server)

    async def on_query(self, account: CmppAccount, msg_id: int) -> tuple[str, datetime | None] | None:
        return await self.single.on_query(account, msg_id)

    async def on_cancel(self, account: CmppAccount, msg_id: int, protocol: str = "smpp") -> str:
        return await self.single.on_cancel(account, msg_id, protocol)

    async def on_stats(self, account: CmppAccount, day: date) -> tuple[int, ...]:
        return await self.single.on_stats(account, day)

    async def close(self) -> None:
        """Stop collecting (the servers' ``stop`` calls it): SUBMITs not written yet are answered as failed."""
        runners, self._runners = self._runners, []
        for runner in runners:
            if runner.get_loop() is asyncio.get_running_loop():
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
        for _, fut in self._queue:
            if not fut.done():
                fut.set_exception(ConnectionError("the server is stopping"))
        self._queue = []

    async def _run(self) -> None:
        assert self._wake is not None and self._collecting is not None
        while True:
            async with self._collecting:  # one writer collects at a time; the others are writing or wait here
                while not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                await asyncio.sleep(self.linger)  # the other connections' SUBMITs of this moment join the group
                waited = self.linger
                while waited < self.max_linger and len(self._queue) < self.max_group:
                    seen = len(self._queue)  # still arriving (a client refilling its window one answer at a time)
                    await asyncio.sleep(0.002)
                    waited += 0.002
                    if len(self._queue) == seen:
                        break
                group, self._queue = self._queue[: self.max_group], self._queue[self.max_group :]
            try:
                decisions = await asyncio.to_thread(self.submit_group, [s for s, _ in group])
            except Exception as e:  # each SUBMIT is answered with the failure (result 9)
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for (_, fut), decision in zip(group, decisions, strict=True):
                if not fut.done():
                    fut.set_result(decision)

    def submit_group(self, submits: list[CustomerSubmit]) -> list[str]:
        out: list[str | None] = [None] * len(submits)
        keyed: dict[tuple[str, str, str], list[int]] = {}
        for i, s in enumerate(submits):
            signature = _signature_of(s.text)
            if signature is None or "${" in s.text or not s.phones:
                out[i] = self.single.submit(s)
            else:
                keyed.setdefault((s.protocol, s.account.sp_id, signature), []).append(i)
        for (protocol, sp_id, signature), idx in keyed.items():
            group = [submits[i] for i in idx]
            for i, decision in zip(idx, self._group(protocol, sp_id, signature, group), strict=True):
                out[i] = decision
        self.groups += 1
        return [d or "blocked" for d in out]

    def _group(self, protocol: str, sp_id: str, signature: str, submits: list[CustomerSubmit]) -> list[str]:
        ctx = self.ctx
        account_id, tenant_id = self.single._account(sp_id)
        actor = f"{protocol}:{sp_id}"
        out: list[str] = ["accepted"] * len(submits)
        hashes: list[list[str]] = []
        for s in submits:
            hs = []
            for raw in s.phones:
                try:
                    hs.append(ctx.vault.hash(batches.parse_phone(raw).e164))
                except batches.InvalidPhone:
                    hs.append("")
            hashes.append(hs)
        with ctx.db.connect() as conn:
            opted = batches.opted_out_among(conn, tenant_id, signature, {h for hs in hashes for h in hs if h})
        taken = []
        for i, hs in enumerate(hashes):
            if hs and all(h in opted for h in hs):
                out[i] = "opted_out"
            else:
                taken.append(i)
        if not taken:
            return out
        numbers, texts, owner, rows = [], [], [], []
        now = datetime.now(UTC)
        for i in taken:
            s = submits[i]
            for raw in s.phones:
                numbers.append(raw)
                texts.append(s.text)
                owner.append(i)
                rows.append(
                    {
                        "msg_id": str(s.msg_ids[0]),
                        "account_id": account_id,
                        "tenant_id": tenant_id,
                        "seq": len(numbers),
                        "phone_enc": ctx.vault.encrypt(raw),
                        "src_id": s.src_id[:21],
                        "registered_delivery": s.registered_delivery,
                        "created_at": now,
                        "reported_at": HELD,
                        "protocol": s.protocol,
                        "part_ids": _part_ids(s),
                    }
                )

        def record(conn: Any, batch: dict[str, Any]) -> None:  # Msg_Id -> (batch, seq) with the batch itself
            conn.execute(insert(cmpp_messages), [{**r, "batch_id": batch["id"]} for r in rows])
            audit.append(
                conn,
                event_type="cmpp.submit",
                actor=actor,
                tenant_id=tenant_id,
                subject=f"batch:{batch['id']}",
                payload={
                    "batch_id": batch["id"],
                    "submits": len(taken),
                    "numbers": len(numbers),
                    "msg_ids": [str(submits[i].msg_ids[0]) for i in taken],
                },
            )

        try:
            batch = batches.create_batch(
                ctx,
                tenant_id,
                name="cmpp submits",
                texts=texts,
                numbers=numbers,
                signature=signature,
                draft=True,
                actor=actor,
                on_created=record,
            )
        except SmsguardError as e:
            log.info("CMPP SUBMITs from %s refused: %s", sp_id, e.message)
            for i in taken:
                out[i] = "blocked"
            return out
        bid = batch["id"]
        try:
            batches.submit_batch(ctx, tenant_id, bid, numbers=numbers, texts=texts, actor=actor)
        except (batches.BudgetExceeded, billing.InsufficientBalance) as e:
            batches.cancel_batch(ctx, tenant_id, bid, actor=actor, reason=e.message[:500])
            _mark_reported(ctx.db, bid)
            for i in taken:  # one by one: the ones that fit the budget are still sent
                out[i] = self.single.submit(submits[i])
            return out
        except SmsguardError as e:
            batches.cancel_batch(ctx, tenant_id, bid, actor=actor, reason=e.message[:500])
            _mark_reported(ctx.db, bid)
            log.info("CMPP SUBMITs from %s refused: %s", sp_id, e.message)
            for i in taken:
                out[i] = "blocked"
            return out
        with ctx.db.connect() as conn:
            rejected = set(
                conn.execute(
                    select(recipients.c.seq).where(recipients.c.batch_id == bid, recipients.c.status == "rejected")
                ).scalars()
            )
        blocked = {owner[seq - 1] for seq in rejected}
        for i in blocked:  # answered with result 20: no report follows (their rows stay held)
            out[i] = "blocked"
        _release_reports(ctx.db, bid, [seq for seq, i in enumerate(owner, start=1) if i not in blocked])
        return out


def _part_ids(submit: CustomerSubmit) -> str | None:
    """A long message's other parts' ids: each part is reported, as customers match reports per part."""
    return " ".join(str(i) for i in submit.msg_ids[1:]) or None


def _signature_of(text: str) -> str | None:
    t = text.strip()
    if not t.startswith("【") or "】" not in t:
        return None
    return t[1:].split("】", 1)[0].strip() or None


HELD = datetime(1970, 1, 1, tzinfo=UTC)
"""``reported_at`` of a SUBMIT's rows until it is answered: the role reports only rows with none, so a report
never goes out for a SUBMIT being answered 20 (its recipients are ``rejected`` in SQL a moment before the answer
is decided), nor for one a crash left unanswered."""


def _release_reports(db: Engine, batch_id: int, seqs: list[int] | None) -> None:
    """The rows of accepted SUBMITs (``seqs`` of the batch, or all) may be reported from now on."""
    with db.begin() as conn:
        base = update(cmpp_messages).where(cmpp_messages.c.batch_id == batch_id, cmpp_messages.c.reported_at == HELD)
        if seqs is None:
            conn.execute(base.values(reported_at=None))
            return
        for k in range(0, len(seqs), 500):
            conn.execute(base.where(cmpp_messages.c.seq.in_(seqs[k : k + 500])).values(reported_at=None))


def _mark_reported(db: Engine, batch_id: int) -> None:
    with db.begin() as conn:
        conn.execute(
            update(cmpp_messages).where(cmpp_messages.c.batch_id == batch_id).values(reported_at=datetime.now(UTC))
        )


@dataclasses.dataclass(frozen=True, slots=True)
class PendingReport:
    sp_id: str
    msg_id: int
    batch_id: int
    seq: int
    phone: str
    stat: str
    src_id: str
    part_ids: tuple[int, ...] = ()  # a long message's other parts: one report each, with the same Stat
    submitted_at: datetime | None = None
    owed_id: int | None = None  # an access_reports row (no recipient behind it: batch_id and seq are 0)

    @property
    def msg_ids(self) -> tuple[int, ...]:
        return (self.msg_id, *self.part_ids)


def owe_reports(db: Engine, vault: PhoneVault, account_id: int, submit: CustomerSubmit, stat: str) -> None:
    """Reports owed for ``submit`` that no recipient row stands for (a long message refused after its parts were
    answered 0): one per part and number, in SQL until a bind of the account takes them. Sent whatever
    Registered_Delivery said: the customer was told 0 for each part and would otherwise never learn."""
    now = datetime.now(UTC)
    rows = [
        {"account_id": account_id, "protocol": submit.protocol, "msg_id": str(msg_id),
         "phone_enc": vault.encrypt(phone), "src_id": submit.src_id[:21], "stat": stat, "created_at": now}
        for phone in submit.phones
        for msg_id in submit.msg_ids
    ]
    if rows:
        with db.begin() as conn:
            conn.execute(insert(access_reports), rows)


def _find_message(conn: Any, account_id: int, msg_id: int) -> Any:
    """The account's newest message with this id (a long message's first part, or one of its other parts)."""
    key = str(msg_id)
    columns = (cmpp_messages.c.batch_id, cmpp_messages.c.seq, recipients.c.status, recipients.c.final_at,
               cmpp_messages.c.part_ids)
    base = (
        select(*columns)
        .join(recipients,
              and_(recipients.c.batch_id == cmpp_messages.c.batch_id, recipients.c.seq == cmpp_messages.c.seq))
        .where(cmpp_messages.c.account_id == account_id)
        .order_by(cmpp_messages.c.created_at.desc())
    )
    row = conn.execute(base.where(cmpp_messages.c.msg_id == key).limit(1)).first()
    if row is not None:
        return row
    # another part of a long message: its first part's row lists it (rare: customers query the id they got
    # for the message, and one part's is as good as another's)
    for r in conn.execute(base.where(cmpp_messages.c.part_ids.like(f"%{key}%")).limit(20)):
        if key in (r.part_ids or "").split():
            return r
    return None


def query_message(db: Engine, account_id: int, msg_id: int) -> tuple[str, datetime | None] | None:
    """(status, final_at) of the account's message ``msg_id``: its recipient's, or ``rejected`` for a part of a
    refused long message (:func:`owe_reports`); None if the account sent no such message."""
    with db.connect() as conn:
        row = _find_message(conn, account_id, msg_id)
        if row is not None:
            return row.status, row.final_at
        owed = conn.execute(
            select(access_reports.c.created_at)
            .where(access_reports.c.account_id == account_id, access_reports.c.msg_id == str(msg_id))
            .limit(1)
        ).first()
    return ("rejected", owed.created_at) if owed is not None else None


CHINA = timezone(timedelta(hours=8))
"""CMPP_QUERY's Time is a day of the ISMG's calendar: China Standard Time."""
_WAITING = ("queued", "deferred", "submitted")


def account_stats(db: Engine, account_id: int, day: date) -> tuple[int, ...]:
    """CMPP_QUERY's eight counts for the account's messages recorded on ``day`` (China time): MT_TLMsg (messages
    taken; a long message is one), MT_Tlusr (distinct numbers), MT_Scs (delivered), MT_WT (queued here or at a
    carrier), MT_FL (any other final state: refused, rejected, opted out, failed, ...), MO_Scs (MO written to its
    binds that day), MO_WT and MO_FL 0 (an MO belongs to an account only once it is delivered to it)."""
    start = datetime(day.year, day.month, day.day, tzinfo=CHINA).astimezone(UTC)
    end = start + timedelta(days=1)
    with db.connect() as conn:
        mt = conn.execute(
            select(
                func.count(),
                func.count(func.distinct(recipients.c.phone_hash)),
                func.coalesce(func.sum(case((recipients.c.status == "delivered", 1), else_=0)), 0),
                func.coalesce(func.sum(case((recipients.c.status.in_(_WAITING), 1), else_=0)), 0),
            )
            .select_from(cmpp_messages)
            .join(recipients,
                  and_(recipients.c.batch_id == cmpp_messages.c.batch_id, recipients.c.seq == cmpp_messages.c.seq))
            .where(cmpp_messages.c.account_id == account_id, cmpp_messages.c.created_at >= start,
                   cmpp_messages.c.created_at < end)
        ).one()
        mo = conn.execute(
            select(func.count())
            .select_from(access_mo)
            .where(access_mo.c.account_id == account_id, access_mo.c.delivered_at >= start,
                   access_mo.c.delivered_at < end)
        ).scalar_one()
    total, users, delivered, waiting = (int(v) for v in mt)
    return total, users, delivered, waiting, total - delivered - waiting, int(mo), 0, 0


def cancel_message(ctx: batches.Context, account: tuple[int, int], msg_id: int, *, actor: str = "cli") -> str:
    """Cancel the account's message ``msg_id`` if it is still queued or deferred here and no release worker is
    handing its batch over right now (what it hands over cannot be recalled). Its row is marked reported: the
    customer asked for this, no receipt follows. The batch's release refunds it as any recipient not handed
    over."""
    account_id, tenant_id = account
    with ctx.db.begin() as conn:
        row = _find_message(conn, account_id, msg_id)
        if row is None:
            return "not_found"
        if row.status not in ("queued", "deferred"):
            return "too_late"
        # the batch row locked (PostgreSQL): a worker taking the lease now waits for this commit, then reads the
        # recipient as cancelled; one holding it may have read the recipient as queued already
        lease = conn.execute(
            select(batch_rows.c.lease_owner, batch_rows.c.lease_until)
            .where(batch_rows.c.id == row.batch_id)
            .with_for_update()
        ).one()
        leased = lease.lease_owner is not None and lease.lease_until is not None
        if leased and _aware(lease.lease_until) > datetime.now(UTC):
            return "too_late"
        n = conn.execute(
            update(recipients)
            .where(recipients.c.batch_id == row.batch_id, recipients.c.seq == row.seq,
                   recipients.c.status.in_(("queued", "deferred")))
            .values(status="cancelled", detail=f"cancelled by the customer ({actor})", final_at=datetime.now(UTC))
        ).rowcount
        if not n:
            return "too_late"
        conn.execute(
            update(cmpp_messages)
            .where(cmpp_messages.c.batch_id == row.batch_id, cmpp_messages.c.seq == row.seq)
            .values(reported_at=datetime.now(UTC))
        )
        audit.append(
            conn,
            event_type="cmpp.cancel",
            actor=actor,
            tenant_id=tenant_id,
            subject=f"batch:{row.batch_id}",
            payload={"batch_id": row.batch_id, "seq": row.seq, "msg_id": str(msg_id)},
        )
    return "cancelled"


def pending_reports(
    db: Engine, vault: PhoneVault, sp_ids: list[str], limit: int = 500, *, protocol: str = "cmpp"
) -> list[PendingReport]:
    """Final states of these accounts' messages that came in over ``protocol``, not reported yet, oldest
    first; then the reports owed without a recipient (:func:`owe_reports`)."""
    if not sp_ids:
        return []
    with db.connect() as conn:
        rows = conn.execute(
            select(
                cmpp_accounts.c.sp_id,
                cmpp_messages.c.msg_id,
                cmpp_messages.c.batch_id,
                cmpp_messages.c.seq,
                cmpp_messages.c.phone_enc,
                cmpp_messages.c.src_id,
                cmpp_messages.c.part_ids,
                cmpp_messages.c.created_at,
                recipients.c.status,
            )
            .join(cmpp_accounts, cmpp_accounts.c.id == cmpp_messages.c.account_id)
            .join(
                recipients,
                and_(recipients.c.batch_id == cmpp_messages.c.batch_id, recipients.c.seq == cmpp_messages.c.seq),
            )
            .where(
                cmpp_accounts.c.sp_id.in_(sp_ids),
                cmpp_messages.c.protocol == protocol,
                cmpp_messages.c.reported_at.is_(None),
                cmpp_messages.c.registered_delivery == 1,
                recipients.c.status.in_(list(STAT)),
            )
            .order_by(cmpp_messages.c.created_at)
            .limit(limit)
        ).all()
        owed = conn.execute(
            select(access_reports, cmpp_accounts.c.sp_id)
            .join(cmpp_accounts, cmpp_accounts.c.id == access_reports.c.account_id)
            .where(
                cmpp_accounts.c.sp_id.in_(sp_ids),
                access_reports.c.protocol == protocol,
                access_reports.c.reported_at.is_(None),
            )
            .order_by(access_reports.c.id)
            .limit(max(0, limit - len(rows)))
        ).all() if len(rows) < limit else []
    out = [
        PendingReport(
            r.sp_id,
            int(r.msg_id),
            r.batch_id,
            r.seq,
            vault.decrypt(r.phone_enc),
            STAT[r.status],
            r.src_id,
            tuple(int(i) for i in (r.part_ids or "").split()),
            r.created_at,
        )
        for r in rows
    ]
    out += [
        PendingReport(r.sp_id, int(r.msg_id), 0, 0, vault.decrypt(r.phone_enc), r.stat, r.src_id,
                      submitted_at=r.created_at, owed_id=r.id)
        for r in owed
    ]
    return out


def mark_reported(db: Engine, reports: list[PendingReport]) -> None:
    if not reports:
        return
    at = datetime.now(UTC)
    with db.begin() as conn:
        for r in reports:
            if r.owed_id is not None:
                conn.execute(update(access_reports).where(access_reports.c.id == r.owed_id).values(reported_at=at))
                continue
            conn.execute(
                update(cmpp_messages)
                .where(cmpp_messages.c.batch_id == r.batch_id, cmpp_messages.c.seq == r.seq)
                .values(reported_at=at)
            )


@dataclasses.dataclass(frozen=True, slots=True)
class PendingMo:
    inbound_id: int
    account_id: int
    sp_id: str
    phone: str
    to: str
    text: str


def pending_mo(
    db: Engine, vault: PhoneVault, sp_ids: list[str], limit: int = 200, *, protocol: str | None = None, pages: int = 5,
    owners: dict[int, tuple[int, str] | None] | None = None,
) -> list[PendingMo]:
    """Handsets' messages to the tenants of these (bound) accounts not yet written to any bind, oldest first, each
    to the account it belongs to: the one that sent the tenant's last message to that number before the reply
    came, over the protocol that message came in on (a reply or 退订 answers that message). Fallback, for a number
    none of the tenant's access accounts sent to (or whose account is revoked since): the tenant's first live
    account, over either protocol (an MO that arrived before that account was made is not one of them). An MO
    whose account is not among ``sp_ids`` (or, with ``protocol``, came in over the other one) waits for it; up to
    ``pages`` pages of ``limit`` waiting MO are looked through per call. ``owners`` (inbound id -> (account id,
    protocol) or None), kept by the caller across calls, spares the lookup for an MO still waiting: its owner
    never changes."""
    if not sp_ids:
        return []
    with db.connect() as conn:
        bound = conn.execute(
            select(cmpp_accounts.c.id, cmpp_accounts.c.tenant_id)
            .where(cmpp_accounts.c.sp_id.in_(sp_ids), cmpp_accounts.c.revoked_at.is_(None))
        ).all()
        if not bound:
            return []
        bound_ids = {a.id for a in bound}
        live = {
            a.id: a
            for a in conn.execute(
                select(cmpp_accounts.c.id, cmpp_accounts.c.sp_id, cmpp_accounts.c.tenant_id,
                       cmpp_accounts.c.created_at)
                .where(cmpp_accounts.c.tenant_id.in_({a.tenant_id for a in bound}),
                       cmpp_accounts.c.revoked_at.is_(None))
                .order_by(cmpp_accounts.c.id)
            )
        }
        first: dict[int, Any] = {}
        for a in live.values():
            first.setdefault(a.tenant_id, a)
        since = min(a.created_at for a in first.values())
        out: list[PendingMo] = []
        after = 0
        for _ in range(pages):
            rows = conn.execute(
                select(
                    inbound_messages.c.id,
                    inbound_messages.c.tenant_id,
                    inbound_messages.c.phone_enc,
                    inbound_messages.c.to_number,
                    inbound_messages.c.text,
                    inbound_messages.c.created_at,
                )
                .outerjoin(access_mo, access_mo.c.inbound_id == inbound_messages.c.id)
                .where(
                    inbound_messages.c.tenant_id.in_(list(first)),
                    access_mo.c.inbound_id.is_(None),
                    inbound_messages.c.phone_enc.is_not(None),
                    inbound_messages.c.created_at >= since,
                    inbound_messages.c.id > after,
                )
                .order_by(inbound_messages.c.id)
                .limit(limit)
            ).all()
            for r in rows:
                e164 = vault.decrypt(r.phone_enc)
                if owners is not None and r.id in owners:
                    owner = owners[r.id]
                else:
                    found = conn.execute(  # the tenant's last message to this number from an access account
                        select(cmpp_messages.c.account_id, cmpp_messages.c.protocol)
                        .join(recipients,
                              and_(recipients.c.batch_id == cmpp_messages.c.batch_id,
                                   recipients.c.seq == cmpp_messages.c.seq))
                        .where(recipients.c.phone_hash == vault.hash(e164), cmpp_messages.c.tenant_id == r.tenant_id,
                               cmpp_messages.c.created_at <= r.created_at)
                        .order_by(cmpp_messages.c.created_at.desc())
                        .limit(1)
                    ).first()
                    owner = None if found is None else (found.account_id, found.protocol)
                    if owners is not None:
                        owners[r.id] = owner
                if owner is not None and owner[0] in live:
                    account = live[owner[0]]
                    if protocol is not None and owner[1] != protocol:
                        continue
                else:
                    account = first[r.tenant_id]
                    if _aware(r.created_at) < _aware(account.created_at):
                        continue
                if account.id in bound_ids:
                    out.append(PendingMo(r.id, account.id, account.sp_id, _terminal_id(e164), r.to_number or "",
                                         r.text))
            if len(rows) < limit or len(out) >= limit:
                break
            after = rows[-1].id
    return out[:limit]


def mark_mo_delivered(db: Engine, delivered: list[PendingMo], protocol: str) -> None:
    if not delivered:
        return
    at = datetime.now(UTC)
    with db.begin() as conn:
        done = set(
            conn.execute(
                select(access_mo.c.inbound_id).where(access_mo.c.inbound_id.in_([m.inbound_id for m in delivered]))
            ).scalars()
        )
        rows = [
            {"inbound_id": m.inbound_id, "account_id": m.account_id, "protocol": protocol, "delivered_at": at}
            for m in delivered
            if m.inbound_id not in done
        ]
        if rows:
            conn.execute(insert(access_mo), rows)


def _terminal_id(e164: str) -> str:
    """The number as customers write it in a SUBMIT: mainland numbers without +86, others without the +."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite keeps no offset
