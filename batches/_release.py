"""The release worker: hands a batch's recipients to the sending queue, each exactly once.

Per batch: ``scheduled`` (and due) → ``releasing``, reserving the cost estimate against the tenant's
budget in the same transaction (over budget: ``cancelled``, with the reason). Then, chunk by chunk in
``seq`` order from the durable cursor ``batches.cursor``:

1. read the next ``queued`` recipients (SQL), decrypt their numbers;
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

from sqlalchemy import func, select, text, update

import audit

from . import _caps, _optouts
from ._batches import SENDABLE_REVIEW, _transition, money, resume_stale_submits
from ._common import Context, now, tenant_name
from ._tables import batch_contents, batches, budgets, handovers, recipients

log = logging.getLogger("smsguard.release")

# ARGV: send ns, 3 opt-out set keys, ncaps, (cap key, max, ttl) * ncaps, sender, tenant, ncontents, texts...,
#       then per recipient: message id, phone, phone hash, content index (1-based)
# -> {codes (one char per recipient: s a o c), first stream id, last stream id}
_HANDOVER = """
local ns = ARGV[1]
local oo1, oo2, oo3 = ARGV[2], ARGV[3], ARGV[4]
local ncaps = tonumber(ARGV[5])
local caps = {}
local p = 6
for i = 1, ncaps do
  caps[i] = {ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])}
  p = p + 3
end
local sender, tenant = ARGV[p], ARGV[p + 1]
local ncontents = tonumber(ARGV[p + 2])
p = p + 3
local texts = {}
for i = 1, ncontents do texts[i] = ARGV[p + i - 1] end
p = p + ncontents
local outbox = ns .. ':outbox'
local codes = {}
local first, last = '', ''
local touched = {}
while p <= #ARGV do
  local id, phone, h, c = ARGV[p], ARGV[p + 1], ARGV[p + 2], tonumber(ARGV[p + 3])
  p = p + 4
  local key = ns .. ':msg:' .. id
  if redis.call('EXISTS', key) == 1 then
    codes[#codes + 1] = 'a'
  elseif redis.call('SISMEMBER', oo1, h) == 1 or redis.call('SISMEMBER', oo2, h) == 1
      or redis.call('SISMEMBER', oo3, h) == 1 then
    codes[#codes + 1] = 'o'
  else
    local full = false
    for i = 1, ncaps do
      local n = tonumber(redis.call('HGET', caps[i][1], h) or '0')
      if n >= caps[i][2] then full = true break end
    end
    if full then
      codes[#codes + 1] = 'c'
    else
      for i = 1, ncaps do
        redis.call('HINCRBY', caps[i][1], h, 1)
        touched[i] = true
      end
      redis.call('HSET', key, 'state', 'queued', 'phone', phone)
      local eid = redis.call('XADD', outbox, '*', 'id', id, 'phone', phone, 'text', texts[c],
                             'sender', sender, 'tenant', tenant)
      if first == '' then first = eid end
      last = eid
      codes[#codes + 1] = 's'
    end
  end
end
for i = 1, ncaps do
  if touched[i] then redis.call('EXPIRE', caps[i][1], caps[i][3]) end
end
return {table.concat(codes), first, last}
"""


def message_id(batch_id: int, seq: int) -> str:
    """Our id of one recipient's message in ``sending`` (outbox entries, delivery reports)."""
    return f"{batch_id}-{seq}"


def parse_message_id(mid: str) -> tuple[int, int] | None:
    b, sep, s = mid.partition("-")
    if not sep or not b.isdigit() or not s.isdigit():
        return None
    return int(b), int(s)


def in_quiet_hours(policy: Any, kind: str, at: datetime) -> datetime | None:
    """When ``kind`` may be released again if ``at`` is inside the quiet hours, else None."""
    q = policy.quiet_hours
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
    ) -> None:
        self.ctx = ctx
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
        self.chunks_done = 0
        self._script = ctx.redis.register_script(_HANDOVER)
        self.stats = {"submitted": 0, "already": 0, "opted_out": 0, "capped": 0, "deferred": 0}

    # -- start-up: Redis is rebuildable from SQL ------------------------------------------------------------
    def prepare(self) -> dict[str, int]:
        out = _optouts.rebuild_sets(self.ctx)
        out["cap_recount"] = _caps.rebuild(self.ctx)
        return out

    def run(self, stop: threading.Event | None = None, *, until_idle: bool = False) -> None:
        """Loop: release whatever is due. ``until_idle`` returns when nothing is due or releasing."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.resume_stale_submits()
            batch_id = self.claim()
            if batch_id is None:
                if until_idle and not self._busy():
                    return
                stop.wait(self.poll)
                continue
            self.release(batch_id, stop)

    def resume_stale_submits(self) -> dict[int, str]:
        """At most every ``stale_check`` seconds: finish the submits a crash left in ``screening``."""
        if time.monotonic() < self._next_stale_check:
            return {}
        self._next_stale_check = time.monotonic() + self.stale_check
        done = resume_stale_submits(self.ctx, actor=self.actor)
        for batch_id, what in done.items():
            log.warning("batch %s was left in screening by a crashed submit: %s", batch_id, what)
        return done

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
            resume = in_quiet_hours(ctx.policy, b.kind, t)
            if resume is not None:
                return self._defer(b, resume)
            with ctx.db.connect() as conn:
                rows = conn.execute(
                    select(recipients.c.seq, recipients.c.phone_enc, recipients.c.phone_hash, recipients.c.content_id)
                    .where(
                        recipients.c.batch_id == batch_id, recipients.c.seq > cursor, recipients.c.status == "queued"
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
        decrypt = ctx.vault.decrypt
        caps = _caps.specs(ctx, b.tenant_id, b.signature, b.kind, self.clock().timestamp())
        head = [ctx.send_namespace, *oo, len(caps)]
        for c in caps:
            head += [c.key, c.max, c.ttl]
        codes: list[str] = []
        first = last = ""
        for i in range(0, len(rows), self.script_chunk):
            part = rows[i : i + self.script_chunk]
            used = sorted({r.content_id for r in part})
            index = {cid: n for n, cid in enumerate(used, start=1)}
            args: list[Any] = [*head, b.sender, tname, len(used), *(texts[cid] for cid in used)]
            for r in part:
                args += [message_id(b.id, r.seq), decrypt(r.phone_enc), r.phone_hash, index[r.content_id]]
            got, f, la = self._script(args=args)
            codes.append(got.decode() if isinstance(got, bytes) else got)
            f = f.decode() if isinstance(f, bytes) else f
            la = la.decode() if isinstance(la, bytes) else la
            first, last = first or f, la or last
        allcodes = "".join(codes)
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
                payload={"batch_id": b.id, "lo": lo, "hi": hi, **n},
            )
        for k, v in n.items():
            self.stats[k] += v
        return None if lost else hi

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
        """Nothing queued is left: the batch is done; refund what was reserved for recipients not handed over."""
        with self.ctx.db.begin() as conn:
            deferred = conn.execute(
                select(func.count())
                .select_from(recipients)
                .where(recipients.c.batch_id == b.id, recipients.c.status == "deferred")
            ).scalar_one()
            if deferred:
                return "waiting"
            actual = conn.execute(
                text(
                    "SELECT COALESCE(SUM(c.segments * CASE r.carrier " + _PRICE_CASE + " END), 0) FROM recipients r "
                    "JOIN batch_contents c ON c.batch_id = r.batch_id AND c.content_id = r.content_id "
                    "WHERE r.batch_id = :b AND r.status IN ('submitted', 'delivered', 'failed', 'expired', 'unknown')"
                ),
                {"b": b.id, **_prices(self.ctx)},
            ).scalar_one()
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
            _transition(
                conn,
                b,
                "done",
                self.actor,
                frm=("releasing",),
                payload={"counts": counts, "cost": money(int(actual)), "refunded": money(refund)},
                done_at=now(),
                lease_owner=None,
                lease_until=None,
            )
        return "done"


_PRICE_CASE = (
    " ".join(f"WHEN '{c}' THEN :p_{c}" for c in ("mobile", "unicom", "telecom", "broadnet", "virtual"))
    + " ELSE :p_other"
)


def _prices(ctx: Context) -> dict[str, int]:
    from ._batches import micros

    p = ctx.policy.prices
    return {f"p_{c}": micros(p.for_carrier(c)) for c in ("mobile", "unicom", "telecom", "broadnet", "virtual", "other")}


class _Retry(Exception):
    pass
