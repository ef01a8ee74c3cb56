"""What the reviewer UI calls: the queue view, claims, the item view, decisions (optimistic version check,
four-eyes rule, bulk for identical content), and the hand-over of final decisions to their sources.

Synchronous: the web handlers run these in the thread pool. Every decision is one SQL transaction that checks
and bumps the item's ``version`` (``UPDATE … WHERE id = :id AND version = :seen``), records the action, and,
when final, writes the training label, runs the source's decision handler and appends the audit event, so
all of it commits or none of it does. Redis (acknowledging or releasing the stream entry) is touched only
after the commit; if that fails, the reaper trims the entry later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Float, and_, case, exists, func, insert, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from smsguard import webhooks
from smsguard.core import ConflictError, ForbiddenError, InputError, NotFoundError, SmsguardError
from smsguard.engine import normalizer
from smsguard.i18n import gettext
from smsguard.storage._models import Tenant

from ._audit import emit
from ._config import ReviewConfig
from ._items import Decision, decision_handler
from ._queue import Lease, Queue
from ._tables import FINAL_STATUSES, OPEN_STATUSES, review_actions, review_items, review_labels, review_users
from ._users import User

log = logging.getLogger("smsguard.review")

ACTIONS = ("approve", "reject", "escalate")
PAGE = 50
MAX_BULK = 200


class ReviewError(InputError):
    code = "review.invalid"


SEVERITIES = ("high", "medium", "low")
SOURCES = ("api", "batch_content", "template", "template_version", "signature", "demo")
MAX_SEARCH = 100
# Items that are not message content (a signature application's summary line): no training label.
UNLABELLED_SOURCES = frozenset({"signature"})


@dataclass(frozen=True, slots=True)
class Filters:
    """Queue filters, as in the queue page's URL: ``?tenant=acme&category=loan&severity=high&q=贷款&age=60``."""

    tenant: str | None = None
    category: str | None = None
    min_age_minutes: int | None = None
    min_priority: int | None = None
    status: str | None = None  # pending | escalated | second; None = every open status
    severity: str | None = None
    source: str | None = None
    search: str | None = None
    """Text search: a substring of the original text or of its folded view (百 家 樂 is found by 百家乐)."""

    @classmethod
    def from_query(cls, q: dict[str, Any], *, categories: Sequence[str] = ()) -> Filters:
        """Parse the page's query; a value the page could not have sent is an error naming the parameter (an
        ignored filter would show a queue the reviewer believes is filtered)."""

        def text(name: str) -> str | None:
            return str(q.get(name) or "").strip() or None

        def num(name: str) -> int | None:
            v = text(name)
            if v is None:
                return None
            if not v.isdigit() or len(v) > 9:
                raise ReviewError(f"{name} must be a whole number of 0 or more, not {v!r}", where=f"query {name}",
                                  code="review.filter")
            return int(v)

        def one_of(name: str, allowed: Sequence[str]) -> str | None:
            v = text(name)
            if v is not None and v not in allowed:
                raise ReviewError(f"{name} must be one of {', '.join(allowed)}, not {v!r}", where=f"query {name}",
                                  code="review.filter")
            return v

        search = text("q")
        if search is not None and len(search) > MAX_SEARCH:
            raise ReviewError(f"search text is limited to {MAX_SEARCH} characters", where="query q",
                              code="review.filter")
        category = text("category")
        if category is not None and categories and category not in categories and category != "none":
            raise ReviewError(f"unknown category {category!r}", where="query category", code="review.filter")
        return cls(
            tenant=text("tenant"),
            category=category,
            min_age_minutes=num("age"),
            min_priority=num("priority"),
            status=one_of("status", OPEN_STATUSES),
            severity=one_of("severity", SEVERITIES),
            source=one_of("source", SOURCES),
            search=search,
        )

    def query(self) -> dict[str, str]:
        out = {"tenant": self.tenant, "category": self.category, "age": self.min_age_minutes,
               "priority": self.min_priority, "status": self.status, "severity": self.severity,
               "source": self.source, "q": self.search}
        return {k: str(v) for k, v in out.items() if v is not None}


@dataclass(slots=True)
class Outcome:
    item_id: int
    status: str
    final: bool
    message: str
    bulk_done: int = 0
    bulk_skipped: int = 0
    release_at: datetime | None = None
    """When the decision is released (None: released already, or not final)."""
    decided_ids: list[int] = field(default_factory=list)
    """The items this call decided that are pending release (what an undo takes back)."""


@dataclass(slots=True)
class QueueView:
    counts: dict[str, int]
    total: int
    oldest_age_seconds: float | None
    rows: list[dict[str, Any]]
    categories: list[str]
    tenants: list[str]
    severity_counts: dict[str, int] = field(default_factory=dict)
    breached: int = 0
    """Open items (with these filters) past their service-level target."""
    near: int = 0
    """Open items past ``near_sla`` of their target but not yet past it."""


@dataclass(slots=True)
class ItemView:
    item: dict[str, Any]
    verdict: dict[str, Any]
    segments: list[tuple[str, list[int], str]]
    recipients: list[str]
    lease: Lease
    lease_holder: str | None
    actions: list[dict[str, Any]]
    similar: list[dict[str, Any]]
    identical_open: int
    tenant: str
    can_decide: bool
    why_not: str | None = None
    approvers: list[str] = field(default_factory=list)


def now() -> datetime:
    return datetime.now(UTC)


class _epoch(FunctionElement):
    """Seconds since 1970 of a timestamp column: the two databases spell it differently."""

    type = Float()
    inherit_cache = True


@compiles(_epoch, "sqlite")
def _epoch_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(_epoch)
def _epoch_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:  # SQLite hands back naive UTC
        return dt.replace(tzinfo=UTC)
    return dt


def eligible_statuses(user: User) -> tuple[str, ...]:
    """Which open items a user may take: reviewers plain pending ones; seniors and admins also escalated items
    and four-eyes items waiting for their second approval; auditors none."""
    if not user.can_act:
        return ()
    return OPEN_STATUSES if user.is_senior else ("pending",)


def highlight_segments(text: str, reasons: Sequence[dict[str, Any]]) -> list[tuple[str, list[int], str]]:
    """Cut ``text`` at every reason's span boundary: ``(piece, indices of the reasons covering it, worst
    severity)``. Spans index the original text, so no offset translation is needed here."""
    spans = []
    for i, r in enumerate(reasons):
        s, e = r.get("start"), r.get("end")
        if isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text):
            spans.append((s, e, i))
    cuts = sorted({0, len(text), *[s for s, _, _ in spans], *[e for _, e, _ in spans]})
    rank = {"low": 1, "medium": 2, "high": 3}
    out = []
    for a, b in itertools.pairwise(cuts):
        covering = [i for s, e, i in spans if s <= a and b <= e]
        sev = max((str(reasons[i].get("severity")) for i in covering), key=lambda v: rank.get(v, 0), default="")
        out.append((text[a:b], covering, sev))
    return out


_DIGIT = re.compile(r"\d")


def _bigrams(text: str) -> set[str]:
    t = _DIGIT.sub("x", "".join(text.split()).lower())  # digits vary per message (codes, amounts)
    return {t[i : i + 2] for i in range(len(t) - 1)} or {t}


class ReviewService:
    def __init__(self, db: Engine, queue: Queue, config: ReviewConfig) -> None:
        self.db = db
        self.queue = queue
        self.config = config
        self._names: dict[str, str] = {}

    # -- queue ---------------------------------------------------------------------------------------
    def _filtered(self, f: Filters, statuses: Sequence[str]) -> list[Any]:
        c = review_items.c
        cond = [c.status.in_(statuses)]
        if f.status:
            cond.append(c.status == f.status)
        if f.tenant:
            cond.append(c.tenant_id == select(Tenant.id).where(Tenant.name == f.tenant).scalar_subquery())
        if f.category:
            cond.append(c.category == f.category)
        if f.min_age_minutes is not None:
            cond.append(c.created_at <= now() - timedelta(minutes=f.min_age_minutes))
        if f.min_priority is not None:
            cond.append(c.priority >= f.min_priority)
        if f.severity:
            cond.append(c.severity == f.severity)
        if f.source:
            cond.append(c.source == f.source)
        if f.search:
            folded = normalizer().fold(f.search)
            cond.append(or_(c.text.contains(f.search, autoescape=True),
                            c.search_text.contains(folded or f.search, autoescape=True)))
        return cond

    def _sla(self, severity: str) -> float:
        return self.config.queue.sla_seconds(severity)

    def _urgency(self) -> tuple[Any, ...]:
        """ORDER BY of the queue: higher priority first, then the earliest service-level deadline (created + the
        severity's target, from the policy in force), so items past or near their target lead and a high-severity
        item overtakes older low-severity ones."""
        c = review_items.c
        target = case(*[(c.severity == sev, self._sla(sev)) for sev in SEVERITIES], else_=self._sla("low"))
        return c.priority.desc(), (_epoch(c.created_at) + target).asc(), c.id

    def queue_view(self, f: Filters, *, limit: int = PAGE) -> QueueView:
        c = review_items.c
        cond = self._filtered(f, OPEN_STATUSES)
        t = now()
        with self.db.connect() as conn:
            counts = {s: 0 for s in OPEN_STATUSES}
            oldest = None
            for status, n, first in conn.execute(
                select(c.status, func.count(), func.min(c.created_at)).where(*cond).group_by(c.status)
            ):
                counts[status] = int(n)
                first = _aware(first)
                oldest = first if oldest is None or (first is not None and first < oldest) else oldest
            severity_counts = {s: 0 for s in SEVERITIES}
            for sev, n in conn.execute(select(c.severity, func.count()).where(*cond).group_by(c.severity)):
                severity_counts[sev] = int(n)
            breached = near = 0
            for sev in SEVERITIES:
                sla = self._sla(sev)
                due = t - timedelta(seconds=sla)
                close = t - timedelta(seconds=sla * self.config.queue.near_sla)
                b, nr = conn.execute(select(
                    func.count().filter(c.created_at <= due),
                    func.count().filter(and_(c.created_at <= close, c.created_at > due)),
                ).where(*cond, c.severity == sev)).one()
                breached, near = breached + int(b or 0), near + int(nr or 0)
            rows = conn.execute(
                select(c.id, c.text, c.category, c.severity, c.score, c.priority, c.batch_size, c.status, c.source,
                       c.created_at, c.stream_id, c.required_approvals, Tenant.name.label("tenant"))
                .join(Tenant, Tenant.id == c.tenant_id)
                .where(*cond)
                .order_by(*self._urgency())
                .limit(limit)
            ).all()
            open_categories = select(c.category).where(c.status.in_(OPEN_STATUSES)).distinct()
            categories = sorted({*conn.execute(open_categories).scalars(), *self.config.categories})
            tenants = sorted(conn.execute(select(Tenant.name)).scalars())
        leases = self.queue.leases([r.stream_id for r in rows])
        out = []
        for r, lease in zip(rows, leases, strict=True):
            d = r._asdict()
            d["age_seconds"] = (t - _aware(r.created_at)).total_seconds()
            sla = self._sla(r.severity)
            d["sla_left_seconds"] = sla - d["age_seconds"]
            d["sla_state"] = ("breached" if d["age_seconds"] >= sla
                              else "near" if d["age_seconds"] >= sla * self.config.queue.near_sla else "ok")
            d["holder"] = self.username(lease.owner) if lease.owner else None
            out.append(d)
        return QueueView(
            counts=counts,
            total=sum(counts.values()),
            oldest_age_seconds=None if oldest is None else (t - oldest).total_seconds(),
            rows=out,
            categories=categories,
            tenants=tenants,
            severity_counts=severity_counts,
            breached=breached,
            near=near,
        )

    def username(self, consumer: str | None) -> str | None:
        if not consumer:
            return None
        if consumer not in self._names and consumer[1:].isdigit():
            with self.db.connect() as conn:
                name = conn.execute(
                    select(review_users.c.username).where(review_users.c.id == int(consumer[1:]))
                ).scalar_one_or_none()
            self._names[consumer] = name or consumer
        return self._names.get(consumer, consumer)

    def claim_next(self, user: User, f: Filters = Filters()) -> int | None:
        """Claim the most urgent item ``user`` may take (see ``_urgency``), honouring the filters."""
        statuses = eligible_statuses(user)
        if not statuses:
            return None
        c = review_items.c
        mine = exists().where(
            review_actions.c.item_id == c.id, review_actions.c.user_id == user.id, review_actions.c.action == "approve"
        )
        # Only an item past its first approval ("second", or escalated after it) can hold one of mine; skipping
        # the check for pending items keeps claims flat on PostgreSQL when fresh rows have no statistics yet.
        cond = [*self._filtered(f, statuses), or_(c.status == "pending", ~mine)]
        for page in range(5):  # most urgent first; the claim skips items others hold
            with self.db.connect() as conn:
                rows = conn.execute(
                    select(c.id, c.stream_id, c.dispatch_epoch)
                    .where(*cond)
                    .order_by(*self._urgency())
                    .offset(page * 20)
                    .limit(20)
                ).all()
            if not rows:
                return None
            got = self.queue.claim(user.consumer, [(r.id, r.stream_id, r.dispatch_epoch) for r in rows])
            if got is not None:
                return got
        return None

    def claim(self, user: User, item_id: int) -> tuple[bool, str | None]:
        """Take ``item_id`` (or keep it, when already ours). ``(False, holder)`` when somebody else holds it."""
        row = self._row(item_id)
        if row.status not in eligible_statuses(user):
            return False, None
        got = self.queue.claim(user.consumer, [(row.id, row.stream_id, row.dispatch_epoch)])
        if got is not None:
            return True, None
        row = self._row(item_id)
        [lease] = self.queue.leases([row.stream_id])
        return False, self.username(lease.owner)

    def extend(self, user: User, item_id: int) -> bool:
        row = self._row(item_id)
        return bool(row.stream_id) and self.queue.extend(user.consumer, row.stream_id)

    def release(self, user: User, item_id: int) -> bool:
        row = self._row(item_id)
        return bool(row.stream_id) and self.queue.release(user.consumer, row.stream_id)

    def force_release(self, user: User, item_id: int) -> bool:
        """A senior frees an item somebody else holds (they walked away, or the item should go to someone else)."""
        if not user.is_senior:
            raise ForbiddenError("only a senior reviewer can release another reviewer's item", where="role",
                                 code="review.forbidden")
        row = self._row(item_id)
        [lease] = self.queue.leases([row.stream_id])
        freed = bool(row.stream_id) and self.queue.force_release(row.stream_id)
        if freed:
            with self.db.begin() as conn:
                emit(conn, event_type="review.release", actor=f"user:{user.username}", tenant_id=row.tenant_id,
                     subject=f"review:{item_id}", payload={"held_by": self.username(lease.owner)})
        return freed

    def bulk_decide(self, user: User, item_ids: Sequence[int], *, action: str, reason: str | None = None,
                    reason_code: str | None = None) -> Outcome:
        """Approve or reject a selection of the queue, each item on its own terms: its own version, lease and
        four-eyes rule (a first approval of a four-eyes item stays a first approval). Items somebody else holds
        or that changed are skipped and counted."""
        if action not in ("approve", "reject"):
            raise ReviewError("a selection can be approved or rejected", where="action")
        ids = sorted({int(i) for i in item_ids})
        if not ids:
            raise ReviewError("select at least one item", where="ids")
        if len(ids) > MAX_BULK:
            raise ReviewError(f"at most {MAX_BULK} items at once", where="ids")
        reason, reason_code, _ = self._meaning(action, reason, reason_code, None)
        if action == "reject" and not reason:
            raise ReviewError("a rejection needs a reason", where="reason", code="review.reason_required")
        done = skipped = 0
        decided: list[int] = []
        release_at = None
        for item_id in ids:
            try:
                row = self._row(item_id)
                one = self._decide_one(user, item_id, version=row.version, action=action, reason=reason,
                                       category=None, reason_code=reason_code, bulk_of=ids[0])
                decided += one.decided_ids
                release_at = one.release_at or release_at
                done += 1
            except SmsguardError:  # held by others, changed, needs a senior, or a handler refused
                skipped += 1
        # in the reviewer's language inside a workbench request, English (the message ids) anywhere else
        verb = {"approve": "approved", "reject": "rejected"}[action]
        msg = (gettext("%(n)s item(s) approved", n=done) if action == "approve"
               else gettext("%(n)s item(s) rejected", n=done))
        if skipped:
            msg += gettext(", %(n)s skipped (held by others, changed, or need a senior)", n=skipped)
        if decided:
            msg += gettext(" (released in %(s)s s unless you undo)", s=f"{self.config.queue.undo_seconds:g}")
        return Outcome(item_id=ids[0], status=verb, final=True, message=msg, bulk_done=done, bulk_skipped=skipped,
                       release_at=release_at, decided_ids=decided)

    def history(self, user: User, f: Filters, *, mine: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """Decided items, newest first: the reviewer's own with ``mine``, narrowed by tenant, category,
        severity, source and the text search."""
        c = review_items.c
        cond = self._filtered(dataclasses.replace(f, status=None, min_age_minutes=None), FINAL_STATUSES)
        if mine:
            cond.append(exists().where(review_actions.c.item_id == c.id, review_actions.c.user_id == user.id))
        with self.db.connect() as conn:
            rows = conn.execute(
                select(c.id, c.text, c.category, c.severity, c.status, c.source, c.decided_at, c.decision_reason,
                       c.decision_reason_code, c.release_at, Tenant.name.label("tenant"))
                .join(Tenant, Tenant.id == c.tenant_id).where(*cond)
                .order_by(c.decided_at.desc(), c.id.desc()).limit(limit)
            ).all()
            deciders: dict[int, list[str]] = {}
            if rows:
                for item_id, name in conn.execute(
                    select(review_actions.c.item_id, review_actions.c.username)
                    .where(review_actions.c.item_id.in_([r.id for r in rows]),
                           review_actions.c.action.in_(("approve", "reject")))
                    .order_by(review_actions.c.id)
                ):
                    deciders.setdefault(item_id, []).append(name)
        return [{**r._asdict(), "deciders": deciders.get(r.id, [])} for r in rows]

    def release_all(self, user: User) -> int:
        """Give back every item ``user`` holds (at logout): nobody else should wait out a lease nobody uses."""
        return self.queue.release_all(user.consumer)

    def _row(self, item_id: int) -> Any:
        with self.db.connect() as conn:
            row = conn.execute(select(review_items).where(review_items.c.id == item_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"no review item {item_id}", where="item", code="review.not_found")
        return row

    # -- item ----------------------------------------------------------------------------------------
    def item_view(self, user: User, item_id: int) -> ItemView:
        row = self._row(item_id)
        verdict = json.loads(row.verdict)
        reasons = [r for r in verdict.get("reasons") or [] if isinstance(r, dict)]
        with self.db.connect() as conn:
            tenant = conn.execute(select(Tenant.name).where(Tenant.id == row.tenant_id)).scalar_one_or_none() or "?"
            actions = [
                r._asdict()
                for r in conn.execute(
                    select(review_actions).where(review_actions.c.item_id == item_id).order_by(review_actions.c.id)
                )
            ]
            identical = int(
                conn.execute(
                    select(func.count()).where(
                        review_items.c.content_hash == row.content_hash,
                        review_items.c.status.in_(OPEN_STATUSES),
                        review_items.c.id != item_id,
                    )
                ).scalar_one()
            )
        [lease] = self.queue.leases([row.stream_id])
        approvers = [a["username"] for a in actions if a["action"] == "approve"]
        why = None
        if row.status not in OPEN_STATUSES:
            why = (gettext("already approved") if row.status == "approved" else gettext("already rejected")
                   if row.status == "rejected" else gettext("already %(status)s", status=row.status))
        elif not user.can_act:
            why = gettext("your role (auditor) is read-only")
        elif row.status not in eligible_statuses(user):
            why = (gettext("needs a senior reviewer (second approval)") if row.status == "second"
                   else gettext("needs a senior reviewer (escalated)"))
        elif user.username in approvers:
            why = gettext("you gave the first approval; a different senior must give the second")
        elif lease.owner and lease.owner != user.consumer:
            why = gettext("claimed by %(user)s", user=self.username(lease.owner))
        return ItemView(
            item=row._asdict(),
            verdict=verdict,
            segments=highlight_segments(row.text, reasons),
            recipients=json.loads(row.sample_recipients or "[]"),
            lease=lease,
            lease_holder=self.username(lease.owner),
            actions=actions,
            similar=self.similar(row),
            identical_open=identical,
            tenant=tenant,
            can_decide=why is None,
            why_not=why,
            approvers=approvers,
        )

    def similar(self, row: Any, *, limit: int = 5, scan: int = 400, threshold: float = 0.3) -> list[dict[str, Any]]:
        """Previously decided items like this one: identical content first, then by character-bigram Jaccard
        overlap (digits folded) among the most recent decisions."""
        c = review_items.c
        cols = (c.id, c.text, c.status, c.decided_at, c.decision_reason, c.category, c.content_hash)
        with self.db.connect() as conn:
            same = conn.execute(
                select(*cols)
                .where(c.content_hash == row.content_hash, c.decided_at.is_not(None), c.id != row.id)
                .order_by(c.decided_at.desc())
                .limit(limit)
            ).all()
            recent = conn.execute(
                select(*cols)
                .where(c.decided_at.is_not(None), c.id != row.id, c.content_hash != row.content_hash)
                .order_by(c.decided_at.desc())
                .limit(scan)
            ).all()
        out = [{**r._asdict(), "similarity": 1.0} for r in same]
        mine = _bigrams(row.text)
        scored = []
        for r in recent:
            other = _bigrams(r.text)
            sim = len(mine & other) / len(mine | other)
            if sim >= threshold:
                scored.append((sim, r))
        scored.sort(key=lambda x: -x[0])
        out += [{**r._asdict(), "similarity": round(s, 2)} for s, r in scored[: max(0, limit - len(out))]]
        return out

    # -- decisions -----------------------------------------------------------------------------------
    def decide(self, user: User, item_id: int, *, version: int, action: str, reason: str | None = None,
               category: str | None = None, bulk: bool = False, reason_code: str | None = None) -> Outcome:
        reason, reason_code, category = self._meaning(action, reason, reason_code, category)
        outcome = self._decide_one(user, item_id, version=version, action=action, reason=reason, category=category,
                                   reason_code=reason_code)
        if bulk and action in ("approve", "reject"):
            done = skipped = 0
            row = self._row(item_id)
            with self.db.connect() as conn:
                twins = conn.execute(
                    select(review_items.c.id, review_items.c.version).where(
                        review_items.c.content_hash == row.content_hash,
                        review_items.c.status.in_(eligible_statuses(user)),
                        review_items.c.id != item_id,
                    ).order_by(review_items.c.id).limit(1000)
                ).all()
            for twin_id, twin_version in twins:
                try:
                    twin = self._decide_one(user, twin_id, version=twin_version, action=action, reason=reason,
                                            category=category, bulk_of=item_id, reason_code=reason_code)
                    outcome.decided_ids += twin.decided_ids
                    done += 1
                except SmsguardError:  # taken by someone else, decided meanwhile, or a handler refused: skip it
                    skipped += 1
            outcome.bulk_done, outcome.bulk_skipped = done, skipped
            outcome.message += f"; {done} identical item(s) too" + (f", {skipped} skipped" if skipped else "")
        return outcome

    def _meaning(self, action: str, reason: str | None, reason_code: str | None,
                 category: str | None) -> tuple[str | None, str | None, str | None]:
        """Check a decision's canned reason and category against the policy; the stored reason is the canned
        label (Chinese, what the customer reads) followed by the reviewer's free text."""
        reason = (reason or "").strip() or None
        reason_code = (reason_code or "").strip() or None
        category = (category or "").strip() or None
        if reason and len(reason) > 500:
            raise ReviewError("the reason is limited to 500 characters", where="reason")
        if category is not None and self.config.categories and category not in self.config.categories:
            raise ReviewError(f"unknown category {category!r}; choose one of the policy's categories",
                              where="category", code="review.category")
        if reason_code is not None:
            canned = self.config.reason(reason_code)
            if canned is None:
                raise ReviewError(f"unknown reason {reason_code!r}", where="reason_code", code="review.reason_code")
            if action == "reject":
                reason = f"{canned.label}：{reason}" if reason else canned.label
        return reason, reason_code if action == "reject" else None, category

    def _decide_one(self, user: User, item_id: int, *, version: int, action: str, reason: str | None,
                    category: str | None, bulk_of: int | None = None, reason_code: str | None = None) -> Outcome:
        if action not in ACTIONS:
            raise ReviewError(f"action must be one of {', '.join(ACTIONS)}", where="action")
        reason = (reason or "").strip() or None
        if action == "reject" and not reason:
            raise ReviewError("a rejection needs a reason", where="reason", code="review.reason_required")
        if not user.can_act:
            raise ForbiddenError(f"role {user.role} is read-only", where="role", code="review.forbidden")
        row = self._row(item_id)
        if row.version != version or row.status not in OPEN_STATUSES:
            raise ConflictError(self._conflict_message(row), where="version", code="review.conflict")
        if row.status not in eligible_statuses(user):
            raise ForbiddenError("this item needs a senior reviewer", where="role", code="review.forbidden")
        if action == "escalate" and row.status != "pending":
            raise ReviewError("only a pending item can be escalated", where="action")
        with self.db.connect() as conn:
            approvers = list(
                conn.execute(
                    select(review_actions.c.username).where(
                        review_actions.c.item_id == item_id, review_actions.c.action == "approve"
                    ).order_by(review_actions.c.id)
                ).scalars()
            )
        if action == "approve" and user.username in approvers:
            raise ForbiddenError("the four-eyes rule needs a second, different approver", where="user",
                            code="review.four_eyes")
        # Hold the lease (ours already, or free/expired): a reviewer who lost it to somebody else must not decide
        # over their shoulder. The SQL version check below is what makes a double decision impossible.
        got, holder = self.claim(user, item_id)
        if not got:
            raise ConflictError(f"item {item_id} is being reviewed by {holder or 'someone else'}", where="lease",
                                code="review.conflict")
        row = self._row(item_id)  # the claim may have re-dispatched it (new stream entry after a Redis loss)

        if action == "reject":
            status, final = "rejected", True
        elif action == "escalate":
            status, final = "escalated", False
        elif len(approvers) + 1 >= row.required_approvals:
            status, final = "approved", True
        else:
            status, final = "second", False
        t = now()
        undo = self.config.queue.undo_seconds
        pending_release = final and undo > 0
        release_at = t + timedelta(seconds=undo) if pending_release else None
        with self.db.begin() as conn:
            changed = conn.execute(
                update(review_items)
                .where(review_items.c.id == item_id, review_items.c.version == version)
                .values(
                    version=version + 1,
                    status=status,
                    decided_at=t if final else None,
                    decision_reason=reason if final else row.decision_reason,
                    decision_category=(category or (row.category if action == "reject" else None)) if final else None,
                    decision_reason_code=reason_code if final else None,
                    release_at=release_at,
                    undo_status=row.status if pending_release else None,
                )
            ).rowcount
            if changed != 1:
                raise ConflictError(self._conflict_message(self._row(item_id)), where="version", code="review.conflict")
            conn.execute(
                insert(review_actions).values(
                    item_id=item_id, user_id=user.id, username=user.username, role=user.role, action=action,
                    reason=reason, reason_code=reason_code, category=category, item_version=version, created_at=t,
                )
            )
            deciders = [*approvers, user.username] if action == "approve" else [user.username]
            payload: dict[str, Any] = {"action": action, "status": status, "final": final, "version": version + 1,
                                       "source": row.source, "source_ref": row.source_ref, "deciders": deciders}
            if reason:
                payload["reason"] = reason
            if reason_code:
                payload["reason_code"] = reason_code
            if category:
                payload["category"] = category
            if bulk_of is not None:
                payload["bulk_of"] = bulk_of
            if release_at is not None:
                payload["release_at"] = release_at.isoformat()
            emit(conn, event_type=f"review.{action}", actor=f"user:{user.username}", tenant_id=row.tenant_id,
                 subject=f"review:{item_id}", payload=payload)
            if final and not pending_release:
                self._release_effects(conn, self._row_in(conn, item_id), deciders)
        try:
            if final and not pending_release:
                self.queue.finish(row.stream_id)
            elif not final:
                self.release(user, item_id)
            # pending release: the reviewer keeps the entry (so an undo gives the item straight back to them);
            # the release worker acknowledges it once the release is committed
        except Exception:  # committed already; the reaper trims or frees the entry later
            pass
        if status == "approved" and row.required_approvals > 1:
            msg = gettext("item %(id)s approved (second approval)", id=item_id)
        else:
            msg = {
                "approved": gettext("item %(id)s approved", id=item_id),
                "rejected": gettext("item %(id)s rejected", id=item_id),
                "escalated": gettext("item %(id)s escalated to a senior reviewer", id=item_id),
                "second": gettext("item %(id)s: first approval recorded; a senior must give the second (four-eyes)",
                                  id=item_id),
            }[status]
        if pending_release:
            msg += gettext(" (released in %(s)s s unless you undo it)", s=f"{undo:g}")
        return Outcome(item_id=item_id, status=status, final=final, message=msg, release_at=release_at,
                       decided_ids=[item_id] if pending_release else [])

    # -- release and undo ------------------------------------------------------------------------------
    @staticmethod
    def _row_in(conn: Any, item_id: int) -> Any:
        return conn.execute(select(review_items).where(review_items.c.id == item_id)).one()

    def _release_effects(self, conn: Any, row: Any, deciders: Sequence[str]) -> None:
        """What a final decision does downstream, inside ``conn``'s transaction: the training label, the
        source's handler (the batch continues or is blocked, the template is decided) and the tenant's webhook."""
        approved = row.status == "approved"
        t = _aware(row.decided_at) or now()
        if row.source not in UNLABELLED_SOURCES:
            conn.execute(
                insert(review_labels).values(
                    item_id=row.id, tenant_id=row.tenant_id, text=row.text, label=0 if approved else 1,
                    category=row.decision_category, created_at=t,
                )
            )
        handler = decision_handler(row.source)
        if handler is not None:
            handler(conn, Decision(item_id=row.id, source=row.source, source_ref=row.source_ref,
                                   tenant_id=row.tenant_id, approved=approved, reason=row.decision_reason,
                                   deciders=list(deciders), category=row.decision_category, decided_at=t,
                                   reason_code=row.decision_reason_code))
        # the tenant's webhooks learn the decision on their content in this same transaction
        webhooks.emit(conn, tenant_id=row.tenant_id, event_type="review.decided", subject=f"review:{row.id}",
                      payload={"item_id": row.id, "source": row.source, "source_ref": row.source_ref,
                               "decision": row.status, "reason": row.decision_reason,
                               "reason_code": row.decision_reason_code, "category": row.decision_category,
                               "decided_at": t.isoformat()})

    @staticmethod
    def _deciders(conn: Any, row: Any) -> list[str]:
        acts = conn.execute(
            select(review_actions.c.username, review_actions.c.action)
            .where(review_actions.c.item_id == row.id).order_by(review_actions.c.id)
        ).all()
        if row.status == "approved":
            return [a.username for a in acts if a.action == "approve"]
        return [a.username for a in acts if a.action == "reject"][-1:]

    def release_due(self, *, at: datetime | None = None, limit: int = 200) -> int:
        """Release every decision whose undo window has closed (``release_at`` ≤ now): each in its own
        transaction, which clears ``release_at`` only if it is still set (so two processes, or a late undo,
        never both act) and runs the downstream effects; the Redis entry is acknowledged after the commit.
        Run every second by the review UI's background loop in every API process; the deadline is in SQL,
        so decisions left pending by a killed process are released by the next one. Returns how many."""
        t = at or now()
        c = review_items.c
        with self.db.connect() as conn:
            ids = list(conn.execute(
                select(c.id).where(c.release_at.is_not(None), c.release_at <= t).order_by(c.release_at).limit(limit)
            ).scalars())
        released = 0
        for item_id in ids:
            try:
                with self.db.begin() as conn:
                    changed = conn.execute(
                        update(review_items)
                        .where(c.id == item_id, c.release_at.is_not(None), c.release_at <= t)
                        .values(release_at=None, undo_status=None)
                    ).rowcount
                    if changed != 1:
                        continue  # undone in time, or released by another process
                    row = self._row_in(conn, item_id)
                    self._release_effects(conn, row, self._deciders(conn, row))
                    emit(conn, event_type="review.released", actor="system:review", tenant_id=row.tenant_id,
                         subject=f"review:{item_id}", payload={"status": row.status, "version": row.version})
            except SmsguardError as e:
                # the source refused the decision (say the batch was cancelled meanwhile): the item opens again
                self._reopen_refused(item_id, e)
                continue
            except Exception as e:  # SQL or Redis briefly away: this one is retried next turn, the rest go on
                log.warning("review release of item %s: %s", item_id, e)
                continue
            released += 1
            with contextlib.suppress(Exception):  # committed already; the reaper trims the entry later
                self.queue.finish(row.stream_id)
        return released

    def _reopen_refused(self, item_id: int, error: SmsguardError) -> None:
        c = review_items.c
        with self.db.begin() as conn:
            row = conn.execute(select(review_items).where(c.id == item_id)).one_or_none()
            if row is None or row.release_at is None:
                return
            conn.execute(update(review_items).where(c.id == item_id).values(
                status=row.undo_status or "pending", version=row.version + 1, decided_at=None, decision_reason=None,
                decision_category=None, decision_reason_code=None, release_at=None, undo_status=None,
                dispatch_epoch=None))
            last = conn.execute(select(review_actions.c.id).where(review_actions.c.item_id == item_id)
                                .order_by(review_actions.c.id.desc()).limit(1)).scalar_one_or_none()
            if last is not None:
                conn.execute(review_actions.delete().where(review_actions.c.id == last))
            emit(conn, event_type="review.release_refused", actor="system:review", tenant_id=row.tenant_id,
                 subject=f"review:{item_id}", payload={"error": error.message, "code": error.code})

    def undo(self, user: User, item_ids: Sequence[int]) -> Outcome:
        """Take back the caller's own decisions that are still pending release: each item goes back to the
        status it had (pending, escalated, second), claimed by the caller, and nothing downstream happened.
        After the window the decision is released and an undo is refused (409 ``review.undo_expired``)."""
        ids = sorted({int(i) for i in item_ids})
        if not ids:
            raise ReviewError("name the decision to undo", where="ids", code="review.undo_nothing")
        if len(ids) > MAX_BULK + 1:
            raise ReviewError(f"at most {MAX_BULK + 1} items at once", where="ids")
        if not user.can_act:
            raise ForbiddenError(f"role {user.role} is read-only", where="role", code="review.forbidden")
        c = review_items.c
        undone: list[int] = []
        errors: list[SmsguardError] = []
        for item_id in ids:
            try:
                self._undo_one(user, item_id)
                undone.append(item_id)
            except SmsguardError as e:
                errors.append(e)
        if not undone:
            raise errors[0]
        for item_id in undone:
            # back to the reviewer who undid it (their entry, kept while pending release); with Redis away the
            # dispatcher offers it again later, SQL has it open already
            with contextlib.suppress(Exception):
                self.claim(user, item_id)
        with self.db.connect() as conn:
            status = conn.execute(select(c.status).where(c.id == undone[0])).scalar_one()
        msg = (gettext("item %(id)s undone: back to %(status)s, claimed by you", id=undone[0], status=status)
               if len(undone) == 1 else gettext("%(n)s decisions undone", n=len(undone)))
        if errors:
            msg += gettext("; %(n)s could not be: %(why)s", n=len(errors), why=errors[0].message)
        return Outcome(item_id=undone[0], status=status, final=False, message=msg, bulk_done=len(undone),
                       bulk_skipped=len(errors))

    def _undo_one(self, user: User, item_id: int) -> None:
        c = review_items.c
        t = now()
        with self.db.begin() as conn:
            row = conn.execute(select(review_items).where(c.id == item_id)).one_or_none()
            if row is None:
                raise NotFoundError(f"no review item {item_id}", where="item", code="review.not_found")
            if row.release_at is None:
                if row.status in FINAL_STATUSES:
                    raise ConflictError(f"item {item_id} was {row.status} and its decision has been released; "
                                        "it can no longer be undone", where="item", code="review.undo_expired")
                raise ConflictError(f"item {item_id} has no decision to undo (it is {row.status})", where="item",
                                    code="review.undo_nothing")
            release_at = _aware(row.release_at)
            if release_at <= t:
                raise ConflictError(f"the undo window of item {item_id} closed at "
                                    f"{release_at.strftime('%H:%M:%S UTC')}; the decision is being released",
                                    where="item", code="review.undo_expired")
            last = conn.execute(
                select(review_actions.c.id, review_actions.c.user_id, review_actions.c.action)
                .where(review_actions.c.item_id == item_id).order_by(review_actions.c.id.desc()).limit(1)
            ).one_or_none()
            if last is None or last.user_id != user.id:
                raise ForbiddenError(f"only the reviewer who decided item {item_id} can undo it", where="user",
                                     code="review.undo_forbidden")
            changed = conn.execute(
                update(review_items)
                .where(c.id == item_id, c.version == row.version, c.release_at.is_not(None), c.release_at > t)
                .values(status=row.undo_status or "pending", version=row.version + 1, decided_at=None,
                        decision_reason=None, decision_category=None, decision_reason_code=None, release_at=None,
                        undo_status=None)
            ).rowcount
            if changed != 1:  # released (or undone) a moment ago by another process
                raise ConflictError(f"the decision on item {item_id} was released meanwhile; it can no longer be "
                                    "undone", where="item", code="review.undo_expired")
            conn.execute(review_actions.delete().where(review_actions.c.id == last.id))
            emit(conn, event_type="review.undo", actor=f"user:{user.username}", tenant_id=row.tenant_id,
                 subject=f"review:{item_id}", payload={"undone": last.action, "status": row.undo_status,
                                                       "version": row.version + 1})

    def _conflict_message(self, row: Any) -> str:
        with self.db.connect() as conn:
            last = conn.execute(
                select(review_actions.c.username, review_actions.c.action, review_actions.c.created_at)
                .where(review_actions.c.item_id == row.id)
                .order_by(review_actions.c.id.desc())
                .limit(1)
            ).one_or_none()
        if last is None:
            return f"item {row.id} changed since you opened it; reload it"
        when = _aware(last.created_at).strftime("%H:%M:%S UTC")
        verb = {"approve": "approved", "reject": "rejected", "escalate": "escalated"}.get(last.action, last.action)
        return f"conflict: {last.username} already {verb} item {row.id} at {when} (it is now {row.status}); " \
               "your decision was not recorded"

    # -- API verdicts --------------------------------------------------------------------------------
    def api_status(self, verdict_id: str) -> dict[str, Any] | None:
        return api_review_status(self.db, verdict_id)


def api_review_status(db: Engine, verdict_id: str) -> dict[str, Any] | None:
    """The human decision on a screening-API verdict: ``{"status": pending|approved|rejected, "decided_at"}``."""
    with db.connect() as conn:
        row = conn.execute(
            select(review_items.c.status, review_items.c.decided_at, review_items.c.release_at).where(
                and_(review_items.c.source == "api", review_items.c.source_ref == verdict_id)
            )
        ).one_or_none()
    if row is None:
        return None
    if row.release_at is not None:  # decided but still within its undo window: not released to the customer yet
        return {"status": "pending", "decided_at": None}
    decided = _aware(row.decided_at)
    return {"status": row.status if row.status in ("approved", "rejected") else "pending",
            "decided_at": decided.isoformat() if decided else None}
