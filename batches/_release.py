"""The release worker: hands a batch's recipients to the sending queue, each exactly once.

Per batch: ``scheduled`` (and due) → ``releasing``, reserving the cost estimate against the tenant's
budget in the same transaction (over budget: ``cancelled``, with the reason). Then, chunk by chunk in
``seq`` order from the durable cursor ``batches.cursor``:

1. read the next ``queued`` recipients (SQL), their numbers sealed as SQL holds them (``sending/_sealing.py``);
2. marketing in quiet hours (policy ``quiet_hours``): every still-queued recipient becomes ``deferred`` and
   the batch sleeps until the window ends (``resume_at``), when they are queued again — deferred, not dropped;
3. one Lua script per sub-chunk does, atomically for each recipient: already handed over? (the message
   key ``<send ns>:msg:<batch>-<seq>`` exists) → ``already``; opted out (global, tenant or signature set) →
   ``opted_out``; a frequency cap full → ``capped``; else count it in every cap window, create the
   message key (state ``queued``) and XADD it to the outbox stream the gateway workers read;
4. one SQL transaction: the chunk's statuses (``submitted`` for handed-over and already-handed), a
   ``handovers`` row with the stream ids, the new cursor and a ``release`` audit event.

Exactly once. The hand-over is idempotent by recipient id: step 3 creates the message key and the
stream entry in one atomic script, and only when the key does not exist, so a recipient can enter the
outbox at most once however often step 3 runs for it. SQL status is the truth about what is left to do:
a crash before step 4 commits leaves the chunk ``queued``; the next run (this worker restarted, or
another one after the lease expires) reads the same recipients, finds their keys (``already``) and
records them as ``submitted`` without a second XADD; a crash after step 4 leaves nothing queued to
redo. So every recipient is handed over at least once (it stays queued until recorded) and at most
once (the key guards the XADD). This holds while Redis keeps acknowledged writes (AOF ``everysec`` in
production); the gateway worker (``sending``) then sends each outbox entry once (its own ``begin`` state).

Two workers on one batch (an expired lease whose owner is only slow) are safe for the same reason:
the script decides per recipient atomically; the lease only avoids wasted work.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError

from smsguard import audit, webhooks
from smsguard.core import get_settings
from smsguard.pumping import PumpingGuard
from smsguard.sending import Cap, EpochChanged, Handover, Outbox, Redrive, sealed_ciphertext

from . import _billing, _caps, _optouts, _settle
from ._common import Context, now, tenant_name
from ._lifecycle import SENDABLE_REVIEW, _transition, money
from ._policy import QuietHours
from ._submit import resume_stale_submits
from ._tables import batch_contents, batches, budgets, handovers, recipients, tenants

log = logging.getLogger("smsguard.release")

BUDGET_LOW = 0.1
"""A ``budget.low`` webhook goes out when a release leaves less than this share of the tenant's budget."""


def message_id(batch_id: int, seq: int) -> str:
    """Our id of one recipient's message in ``sending`` (outbox entries, delivery reports)."""
    return f"{batch_id}-{seq}"


def parse_message_id(mid: str) -> tuple[int, int] | None:
    b, sep, s = mid.partition("-")
    if not sep or not b.isdigit() or not s.isdigit():
        return None
    return int(b), int(s)


def in_quiet_hours(q: QuietHours, kind: str, at: datetime) -> datetime | None:
    """When ``kind`` may be released again if ``at`` is inside the quiet hours ``q``, else None."""
    if kind not in q.kinds:
        return None
    tz = ZoneInfo(q.timezone)
    local = at.astimezone(tz)
    sh, sm = map(int, q.start.split(":"))
    eh, em = map(int, q.end.split(":"))
    minute = local.hour * 60 + local.minute
    start, end = sh * 60 + sm, eh * 60 + em
    if start == end:
        return None
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    resume = local.replace(hour=eh, minute=em, second=0, microsecond=0)
    if resume <= local:
        resume += timedelta(days=1)
    return resume.astimezone(UTC)


class ReleaseWorker:
    """Releases due batches until stopped. ``crash_after_chunks`` (tests only) exits the process right after the
    hand-over of that many chunks, before their SQL commit: the worst moment for exactly-once."""

    def __init__(
        self,
        ctx: Context,
        *,
        worker_id: str | None = None,
        chunk: int = 5000,
        script_chunk: int = 1000,
        lease: float = 15.0,
        poll: float = 0.2,
        pause: float = 0.0,
        clock: Any = None,
        crash_after_chunks: int | None = None,
        stale_check: float = 30.0,
        reconcile_every: float = 60.0,
        message_ttl: int = 7 * 86400,
        redrive_hold: float = 10.0,
        pumping: PumpingGuard | None = None,
    ) -> None:
        self.ctx = ctx
        # verification codes pass the anti-pumping guard (velocity per number, prefix, tenant; blocks in SQL)
        self.pumping = pumping or PumpingGuard(db=ctx.db, redis=ctx.redis, vault=ctx.vault,
                                               settings=ctx.settings or get_settings(), namespace=ctx.namespace)
        self.worker_id = worker_id or f"release-{os.getpid()}-{os.urandom(3).hex()}"
        self.chunk = chunk
        self.script_chunk = script_chunk
        self.lease = lease
        self.poll = poll
        self.pause = pause
        self.clock = clock or (lambda: datetime.now(UTC))
        self.crash_after_chunks = crash_after_chunks
        self.stale_check = stale_check  # seconds between looks for submits a crash left in ``screening``
        self._next_stale_check = 0.0
        self.reconcile_every = reconcile_every  # seconds between billing reconciliations (holds vs reality)
        self._next_reconcile = 0.0
        self.chunks_done = 0
        # message_ttl: how long SQL's "handed over, not final" is worth re-driving (the receipt deadline);
        # redrive_hold: how long a re-driven message that may have been sent waits for a re-sent receipt
        self.message_ttl = message_ttl
        self.outbox = Outbox(ctx.redis, ctx.send_namespace, ttl=message_ttl, hold=redrive_hold)
        self.stats = {"submitted": 0, "already": 0, "opted_out": 0, "capped": 0, "deferred": 0, "recoveries": 0,
                      "redriven": 0, "restored": 0}

    # -- start-up: Redis is rebuildable from SQL ------------------------------------------------------------
    def prepare(self) -> dict[str, int]:
        out = _optouts.rebuild_sets(self.ctx)
        out["cap_recount"] = _caps.rebuild(self.ctx)
        self.epoch()
        return out

    # -- Redis lost its data: rebuild and re-drive from SQL ----------------------------------------------------
    def epoch(self) -> str:
        """The outbox's current epoch; when Redis lost its data (none), first recover what it held from SQL."""
        while True:
            current = self.outbox.epoch()
            if current is not None:
                return current
            self.recover()

    def _epoch_when_back(self) -> str:
        while True:
            try:
                return self.epoch()
            except (RedisConnectionError, RedisTimeoutError):
                time.sleep(0.2)

    def recover(self) -> None:
        """One worker at a time (a short Redis lock; the others wait for the new epoch): opt-out sets and cap
        counters rebuilt from SQL, then a new epoch, then every message SQL says was handed over and is not
        final is put back (``Outbox.redrive``). A loss during the re-drive is seen as the next missing epoch."""
        lock = f"{self.ctx.send_namespace}:recovering"
        if not self.ctx.redis.set(lock, self.worker_id, nx=True, ex=300):
            deadline = time.monotonic() + 300
            while self.outbox.epoch() is None and self.ctx.redis.exists(lock) and time.monotonic() < deadline:
                time.sleep(0.1)
            return
        try:
            log.warning("Redis has no outbox epoch (it lost its data, or first start): rebuilding from SQL")
            _optouts.rebuild_sets(self.ctx)
            _caps.rebuild(self.ctx, force=True)
            epoch = self.outbox.open_epoch()
            self.redrive(epoch)
            self.stats["recoveries"] += 1
        except EpochChanged:
            pass  # lost again meanwhile: the caller finds no epoch and recovers once more
        finally:
            self.ctx.redis.delete(lock)

    def redrive(self, epoch: str, *, batch_id: int | None = None, lo: int = 0, hi: int | None = None) -> str:
        """Put back what Redis lost of the recipients SQL says were handed over (``submitted``) within the
        message TTL; optionally one batch's seq range. Returns the outbox's codes (see ``Outbox.redrive``)."""
        since = self.clock() - timedelta(seconds=self.message_ttl)
        q = (
            select(
                recipients.c.batch_id, recipients.c.seq, recipients.c.phone_enc, recipients.c.gateway,
                recipients.c.gateway_ids, batch_contents.c.text, batches.c.sender, tenants.c.name,
            )
            .select_from(
                recipients.join(batches, batches.c.id == recipients.c.batch_id)
                .join(tenants, tenants.c.id == batches.c.tenant_id)
                .join(
                    batch_contents,
                    (batch_contents.c.batch_id == recipients.c.batch_id)
                    & (batch_contents.c.content_id == recipients.c.content_id),
                )
            )
            .where(recipients.c.status == "submitted", recipients.c.submitted_at >= since)
            .order_by(recipients.c.batch_id, recipients.c.seq)
        )
        if batch_id is not None:
            q = q.where(recipients.c.batch_id == batch_id, recipients.c.seq.between(lo, hi or lo))
        seal = sealed_ciphertext
        codes: list[str] = []
        with self.ctx.db.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=1000).execute(q)
            for part in result.partitions():
                msgs = [
                    Redrive(
                        message_id(r.batch_id, r.seq), seal(r.phone_enc), r.text, r.sender, r.name,
                        r.gateway or "", tuple(x for x in (r.gateway_ids or "").split(",") if x),
                    )
                    for r in part
                ]
                codes.append(self.outbox.redrive(msgs, epoch=epoch))
        out = "".join(codes)
        self.stats["redriven"] += out.count("d")
        self.stats["restored"] += out.count("k")
        if out.count("a") != len(out):
            log.warning("re-driven from SQL: %d to send (held), %d restored as submitted, %d still in Redis",
                        out.count("d"), out.count("k"), out.count("a"))
        return out

    def run(self, stop: threading.Event | None = None, *, until_idle: bool = False) -> None:
        """Loop: release whatever is due. ``until_idle`` returns when nothing is due or releasing."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                self.resume_stale_submits()
                self.reconcile_billing()
                self.epoch()  # by itself: a Redis that lost its data is re-driven even with nothing to release
                batch_id = self.claim()
                if batch_id is None:
                    if until_idle and not self._busy():
                        return
                    stop.wait(self.poll)
                    continue
                self.release(batch_id, stop)
            except (RedisConnectionError, RedisTimeoutError) as e:
                # Redis restarting: SQL says what is left; the chunk in hand stays queued and goes again
                log.warning("Redis unreachable (%s); retrying", e)
                stop.wait(0.5)
            except OperationalError as e:
                # A deadlock with the report relay (PostgreSQL picks one side to roll back), a locked SQLite
                # file, a dropped connection: the transaction rolled back whole, so the chunk it held is still
                # queued under this worker's lease and the next turn takes it again. Dying here stopped the
                # release of every batch until someone restarted the process.
                log.warning("SQL refused a release step (%s); retrying", str(e).splitlines()[0][:200])
                stop.wait(0.2)

    def resume_stale_submits(self) -> dict[int, str]:
        """At most every ``stale_check`` seconds: finish the submits a crash left in ``screening``."""
        if time.monotonic() < self._next_stale_check:
            return {}
        self._next_stale_check = time.monotonic() + self.stale_check
        done = resume_stale_submits(self.ctx, actor=self.actor)
        for batch_id, what in done.items():
            log.warning("batch %s was left in screening by a crashed submit: %s", batch_id, what)
        return done

    def reconcile_billing(self) -> list[dict[str, Any]]:
        """At most every ``reconcile_every`` seconds: settle prepaid holds against what their batches did."""
        if time.monotonic() < self._next_reconcile:
            return []
        self._next_reconcile = time.monotonic() + self.reconcile_every
        return _billing.reconcile(self.ctx, actor=self.actor)

    def _busy(self) -> bool:
        with self.ctx.db.connect() as conn:
            return bool(
                conn.execute(
                    select(func.count())
                    .select_from(batches)
                    .where(
                        batches.c.state.in_(("scheduled", "releasing")),
                        (batches.c.schedule_at.is_(None)) | (batches.c.schedule_at <= self.clock()),
                        (batches.c.resume_at.is_(None)) | (batches.c.resume_at <= self.clock()),
                    )
                ).scalar_one()
            )

    # -- claiming ------------------------------------------------------------------------------------------
    def claim(self) -> int | None:
        """Take one due batch: a scheduled one (→ releasing, budget reserved) or a releasing one whose lease is
        free (resumed after a crash or after quiet hours)."""
        try:
            return self._claim()
        except _Retry:
            return None

    def _claim(self) -> int | None:
        t = self.clock()
        until = t + timedelta(seconds=self.lease)
        with self.ctx.db.begin() as conn:
            row = conn.execute(
                select(batches)
                .where(
                    batches.c.state == "releasing",
                    (batches.c.lease_until.is_(None))
                    | (batches.c.lease_until < t)
                    | (batches.c.lease_owner == self.worker_id),
                    (batches.c.resume_at.is_(None)) | (batches.c.resume_at <= t),
                )
                .order_by(batches.c.id)
                .limit(1)
            ).one_or_none()
            if row is not None:
                took = conn.execute(
                    update(batches)
                    .where(
                        batches.c.id == row.id,
                        batches.c.state == "releasing",
                        (batches.c.lease_until.is_(None))
                        | (batches.c.lease_until < t)
                        | (batches.c.lease_owner == self.worker_id),
                    )
                    .values(lease_owner=self.worker_id, lease_until=until)
                ).rowcount
                if took and row.resume_at is not None:  # quiet hours are over: deferred recipients go again
                    conn.execute(
                        update(recipients)
                        .where(recipients.c.batch_id == row.id, recipients.c.status == "deferred")
                        .values(status="queued", detail=None)
                    )
                    conn.execute(update(batches).where(batches.c.id == row.id).values(resume_at=None, cursor=0))
                    audit.append(
                        conn,
                        event_type="batch.resumed",
                        actor=self.actor,
                        tenant_id=row.tenant_id,
                        subject=f"batch:{row.id}",
                        payload={"batch_id": row.id},
                    )
                return row.id if took else None
            row = conn.execute(
                select(batches)
                .where(batches.c.state == "scheduled", (batches.c.schedule_at.is_(None)) | (batches.c.schedule_at <= t))
                .order_by(batches.c.schedule_at, batches.c.id)
                .limit(1)
            ).one_or_none()
            if row is None:
                return None
            if not self._reserve(conn, row):
                return None
            took = _transition(
                conn,
                row,
                "releasing",
                self.actor,
                frm=("scheduled",),
                payload={"reserved": money(row.estimate_micros)},
                lease_owner=self.worker_id,
                lease_until=until,
                released_at=t,
                reserved_micros=row.estimate_micros,
                cursor=0,
            )
            if not took:
                raise _Retry  # someone cancelled or took it meanwhile: roll back the reservation
            return row.id

    @property
    def actor(self) -> str:
        return f"system:{self.worker_id}"

    def _reserve(self, conn: Any, row: Any) -> bool:
        """Reserve the estimate against the tenant's budget; over budget → the batch is cancelled."""
        budget = conn.execute(select(budgets).where(budgets.c.tenant_id == row.tenant_id)).one_or_none()
        if budget is None:
            return True
        done = conn.execute(
            update(budgets)
            .where(
                budgets.c.tenant_id == row.tenant_id,
                budgets.c.spent_micros + row.estimate_micros <= budgets.c.limit_micros,
            )
            .values(spent_micros=budgets.c.spent_micros + row.estimate_micros, updated_at=now())
        ).rowcount
        if done:
            left_before = budget.limit_micros - budget.spent_micros
            left = left_before - row.estimate_micros
            low = budget.limit_micros * BUDGET_LOW
            if left < low <= left_before:  # crossed the line with this batch: tell the tenant once
                webhooks.emit(conn, tenant_id=row.tenant_id, event_type="budget.low", subject=f"budget:{row.tenant_id}",
                              payload={"limit": money(budget.limit_micros), "remaining": money(left),
                                       "batch_id": row.id, "threshold": BUDGET_LOW})
            return True
        reason = (
            f"budget exceeded at release: the batch costs {money(row.estimate_micros)}, "
            f"{money(budget.limit_micros - budget.spent_micros)} of the budget is left"
        )
        conn.execute(
            update(recipients)
            .where(recipients.c.batch_id == row.id, recipients.c.status == "queued")
            .values(status="cancelled", detail=reason)
        )
        _transition(conn, row, "cancelled", self.actor, frm=("scheduled",), reason=reason)
        webhooks.emit(conn, tenant_id=row.tenant_id, event_type="budget.exceeded", subject=f"budget:{row.tenant_id}",
                      payload={"limit": money(budget.limit_micros),
                               "remaining": money(budget.limit_micros - budget.spent_micros), "batch_id": row.id,
                               "cost": money(row.estimate_micros), "reason": reason})
        return False

    # -- releasing -----------------------------------------------------------------------------------------
    def release(self, batch_id: int, stop: threading.Event | None = None) -> str:
        """Release one claimed batch until done, deferred, stopped or the lease is lost. Returns the outcome."""
        ctx = self.ctx
        with ctx.db.connect() as conn:
            b = conn.execute(select(batches).where(batches.c.id == batch_id)).one()
            tname = tenant_name(conn, b.tenant_id)
            contents = conn.execute(
                select(batch_contents.c.content_id, batch_contents.c.text).where(
                    batch_contents.c.batch_id == batch_id,
                    batch_contents.c.decision != "block",
                    batch_contents.c.review.in_(SENDABLE_REVIEW),
                )
            ).all()
        texts = {cid: t for cid, t in contents}
        if ctx.db.dialect.name == "postgresql":
            # a million rows COPYed a moment ago: without fresh statistics the planner may scan the whole table
            # for every chunk instead of walking the primary key from the cursor
            with ctx.db.connect() as conn:
                conn.execute(text("ANALYZE recipients"))
                conn.commit()
        oo = _optouts.keys_for(ctx.namespace, b.tenant_id, b.signature)
        cursor = b.cursor
        while stop is None or not stop.is_set():
            t = self.clock()
            resume = in_quiet_hours(ctx.policy.batches.quiet_hours, b.kind, t)
            if resume is not None:
                return self._defer(b, resume)
            with ctx.db.connect() as conn:
                rows = conn.execute(
                    select(
                        recipients.c.seq, recipients.c.phone_enc, recipients.c.phone_hash, recipients.c.content_id,
                        recipients.c.status,
                    )
                    .where(
                        recipients.c.batch_id == batch_id,
                        recipients.c.seq > cursor,
                        # queued, or handed over by a run that crashed before recording it and already
                        # final (its report overtook the record): it still gets its record
                        (recipients.c.status == "queued")
                        | (recipients.c.submitted_at.is_(None) & recipients.c.status.in_(_caps.HANDED)),
                    )
                    .order_by(recipients.c.seq)
                    .limit(self.chunk)
                ).all()
            if not rows:
                return self._finish(b)
            cursor = self._chunk(b, tname, texts, oo, rows)
            if cursor is None:
                return "lease-lost"
            if self.pause:
                time.sleep(self.pause)
        return "stopped"

    def _chunk(
        self, b: Any, tname: str, texts: dict[int, str], oo: tuple[str, str, str], rows: list[Any]
    ) -> int | None:
        ctx = self.ctx
        seal = sealed_ciphertext  # SQL's ciphertext as it is: no plain number reaches Redis, nothing decrypted
        epoch = self.epoch()  # read before the checks: a loss after it refuses the hand-over
        caps = [Cap(c.key, c.max, c.ttl) for c in _caps.specs(ctx, b.tenant_id, b.signature, b.kind,
                                                               self.clock().timestamp())]
        todo = [r for r in rows if r.status == "queued"]
        refused = self._pumping_refusals(b, todo)
        if refused:
            todo = [r for r in todo if r.seq not in refused]
        with ctx.db.connect() as conn:
            opted_sql = _optouts.opted_out_among(conn, b.tenant_id, b.signature, (r.phone_hash for r in todo))
        content_ids = sorted(texts)
        index = {cid: n for n, cid in enumerate(content_ids)}
        all_texts = [texts[cid] for cid in content_ids]
        messages = [
            Handover(message_id(b.id, r.seq), seal(r.phone_enc), r.phone_hash, index[r.content_id],
                     r.phone_hash in opted_sql)
            for r in todo
        ]
        parts = [messages[i : i + self.script_chunk] for i in range(0, len(messages), self.script_chunk)]
        got: list[str] = []
        first = last = ""
        i = 0
        held_upto = 0  # parts below this were handed over under an epoch Redis has since lost: held again
        while i < len(parts):
            try:
                res = self.outbox.hand_over(
                    parts[i], all_texts, epoch=epoch, sender=b.sender, tenant=tname, optout_sets=oo, caps=caps,
                    held=i < held_upto,
                )
            except (EpochChanged, RedisConnectionError, RedisTimeoutError) as e:
                # Redis lost its data, or restarts: what this chunk handed over so far may be gone, or sent
                # already; the chunk goes again, those parts held for a re-sent receipt first
                log.warning("batch %s: Redis lost its data mid-chunk (%r); handing the chunk over again", b.id, e)
                epoch, held_upto, i, got, first, last = self._epoch_when_back(), max(held_upto, i), 0, [], "", ""
                continue
            got.append(res.codes)
            first, last = first or res.first_entry, res.last_entry or last
            i += 1
        handed = iter("".join(got))
        allcodes = "".join("a" if r.status != "queued" else "p" if r.seq in refused else next(handed) for r in rows)
        self.chunks_done += 1
        if self.crash_after_chunks is not None and self.chunks_done >= self.crash_after_chunks:
            os._exit(17)  # tests: die between the hand-over and its SQL record
        opted = [r.seq for r, c in zip(rows, allcodes, strict=True) if c == "o"]
        capped = [r.seq for r, c in zip(rows, allcodes, strict=True) if c == "c"]
        n = {
            k: allcodes.count(c) for k, c in (("submitted", "s"), ("already", "a"), ("opted_out", "o"), ("capped", "c"))
        }
        lo, hi = rows[0].seq, rows[-1].seq
        t = self.clock()
        with ctx.db.begin() as conn:
            owner = conn.execute(
                select(batches.c.lease_owner, batches.c.state).where(batches.c.id == b.id).with_for_update()
            ).one()
            # another worker took over: its script run decides; ours only handed over what it did (once)
            lost = owner.lease_owner != self.worker_id or owner.state != "releasing"
            for seqs, status, detail in ((opted, "opted_out", "opted out"), (capped, "capped", "frequency cap")):
                for j in range(0, len(seqs), 500):
                    conn.execute(
                        update(recipients)
                        .where(
                            recipients.c.batch_id == b.id,
                            recipients.c.seq.in_(seqs[j : j + 500]),
                            recipients.c.status == "queued",
                        )
                        .values(status=status, detail=detail)
                    )
            for seq, code in refused.items():  # anti-pumping: never handed over, the reason code kept
                conn.execute(
                    update(recipients)
                    .where(recipients.c.batch_id == b.id, recipients.c.seq == seq, recipients.c.status == "queued")
                    .values(status="refused", detail=code)
                )
            conn.execute(
                update(recipients)
                .where(recipients.c.batch_id == b.id, recipients.c.seq.between(lo, hi), recipients.c.status == "queued")
                .values(status="submitted", submitted_at=t)
            )
            # A fast gateway's delivery report can land before this record (the hand-over to Redis comes
            # first): the row is final already, but it was handed over now, and caps rebuilt from SQL count it
            # by submitted_at.
            conn.execute(
                update(recipients)
                .where(
                    recipients.c.batch_id == b.id,
                    recipients.c.seq.between(lo, hi),
                    recipients.c.submitted_at.is_(None),
                    recipients.c.status.in_(_caps.HANDED),
                )
                .values(submitted_at=t)
            )
            # prepaid: charged in this transaction for exactly the recipients it records as handed over
            _billing.charge_handed(conn, b, lo, hi, t, self.actor)
            conn.execute(
                handovers.insert().values(
                    batch_id=b.id,
                    lo=lo,
                    hi=hi,
                    first_entry=first or None,
                    last_entry=last or None,
                    worker=self.worker_id,
                    at=t,
                    **n,
                )
            )
            if not lost:
                conn.execute(
                    update(batches)
                    .where(batches.c.id == b.id)
                    .values(cursor=hi, lease_until=t + timedelta(seconds=self.lease))
                )
            audit.append(
                conn,
                event_type="release",
                actor=self.actor,
                tenant_id=b.tenant_id,
                subject=f"batch:{b.id}",
                payload={"batch_id": b.id, "lo": lo, "hi": hi, **n, **({"refused": len(refused)} if refused else {})},
            )
        if self.outbox.epoch() != epoch:
            # Redis lost its data before this record: a recovery may have read SQL before it, so this chunk
            # is re-driven here too (idempotent by message id)
            self.redrive(self.epoch(), batch_id=b.id, lo=lo, hi=hi)
        for k, v in n.items():
            self.stats[k] += v
        self.stats["refused"] = self.stats.get("refused", 0) + len(refused)
        return None if lost else hi

    def _pumping_refusals(self, b: Any, todo: list[Any]) -> dict[int, str]:
        """Verification codes the anti-pumping guard refuses (seq → reason code). A recipient whose message
        key exists was handed over by a run that crashed before recording it: not judged (nor counted) again."""
        if b.kind != "verification" or b.guarded or not todo:  # guarded: judged by the API already
            return {}
        ctx = self.ctx
        exists = ctx.redis.pipeline(transaction=False)
        for r in todo:
            exists.exists(f"{ctx.send_namespace}:msg:{message_id(b.id, r.seq)}")
        refused = {}
        for r, handed in zip(todo, exists.execute(), strict=True):
            if handed:
                continue
            decision = self.pumping.check(b.tenant_id, ctx.vault.decrypt(r.phone_enc), b.signature, None, b.kind)
            if not decision.allowed:
                refused[r.seq] = decision.code
        return refused

    def _defer(self, b: Any, resume: datetime) -> str:
        with self.ctx.db.begin() as conn:
            n = conn.execute(
                update(recipients)
                .where(recipients.c.batch_id == b.id, recipients.c.status == "queued")
                .values(status="deferred", detail=f"quiet hours: until {resume.isoformat()}")
            ).rowcount
            conn.execute(
                update(batches)
                .where(batches.c.id == b.id)
                .values(resume_at=resume, cursor=0, lease_owner=None, lease_until=None, updated_at=now())
            )
            audit.append(
                conn,
                event_type="batch.deferred",
                actor=self.actor,
                tenant_id=b.tenant_id,
                subject=f"batch:{b.id}",
                payload={"batch_id": b.id, "recipients": n, "resume_at": resume.isoformat()},
            )
        self.stats["deferred"] += n
        return "deferred"

    def _finish(self, b: Any) -> str:
        """Nothing queued is left: the batch is ``sending`` (``done`` once every recipient is final, see
        batches/_settle.py); refund what was reserved for recipients not handed over."""
        with self.ctx.db.begin() as conn:
            deferred = conn.execute(
                select(func.count())
                .select_from(recipients)
                .where(recipients.c.batch_id == b.id, recipients.c.status == "deferred")
            ).scalar_one()
            if deferred:
                return "waiting"
            actual = handed_cost(conn, self.ctx, b.id)
            row = conn.execute(select(batches.c.reserved_micros, batches.c.state).where(batches.c.id == b.id)).one()
            if row.state != "releasing":
                return row.state
            refund = max(0, row.reserved_micros - int(actual))
            if refund:
                conn.execute(
                    update(budgets)
                    .where(budgets.c.tenant_id == b.tenant_id)
                    .values(spent_micros=budgets.c.spent_micros - refund, updated_at=now())
                )
            counts = dict(
                conn.execute(
                    select(recipients.c.status, func.count())
                    .where(recipients.c.batch_id == b.id)
                    .group_by(recipients.c.status)
                ).all()
            )
            # done at once when nothing was handed over (all opted out, capped, ...): no receipt is coming
            to = "sending" if any(counts.get(s, 0) for s in _settle.OPEN) else "done"
            _transition(
                conn,
                b,
                to,
                self.actor,
                frm=("releasing",),
                payload={"counts": counts, "cost": money(int(actual)), "refunded": money(refund)},
                lease_owner=None,
                lease_until=None,
                **({"done_at": now()} if to == "done" else {}),
            )
        return to


_PRICE_CASE = (
    " ".join(f"WHEN '{c}' THEN :p_{c}" for c in ("mobile", "unicom", "telecom", "broadnet", "virtual"))
    + " ELSE :p_other"
)


def handed_cost(conn: Any, ctx: Context, batch_id: int) -> int:
    """What the recipients of a batch handed over so far cost, in micros (the charge; the rest is refunded),
    at the prices the batch was estimated at (the tenant's price list)."""
    b = conn.execute(select(batches.c.tenant_id, batches.c.kind).where(batches.c.id == batch_id)).one()
    prices = {f"p_{c}": p for c, p in _billing.prices_for(ctx, conn, b.tenant_id, b.kind).items()}
    return int(conn.execute(
        text(
            "SELECT COALESCE(SUM(c.segments * CASE r.carrier " + _PRICE_CASE + " END), 0) FROM recipients r "
            "JOIN batch_contents c ON c.batch_id = r.batch_id AND c.content_id = r.content_id "
            "WHERE r.batch_id = :b AND r.status IN ('submitted', 'delivered', 'failed', 'expired', 'unknown')"
        ),
        {"b": batch_id, **prices},
    ).scalar_one())


class _Retry(Exception):
    pass
