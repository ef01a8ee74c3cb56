"""Team statistics of the review queue: per reviewer and per queue (category), over a recent window.

What a team lead runs a shift on: decisions per hour (over the reviewer's active time), the median time to
decide (the gap between a reviewer's consecutive decisions — claim-to-decision as the reviewer lives it; gaps
over ``BREAK`` are breaks, not work), how often a senior overturned the reviewer (a later decision by a senior on
the same item that went the other way), agreement on items two people decided (four-eyes, escalations), and
service-level breaches (items decided, or still open, past their severity's target from policy.yaml
``review.sla_minutes``). Computed from SQL (``review_actions``, ``review_items``), so every process and the
``/metrics`` scrape see the same figures.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from ._config import ReviewConfig
from ._tables import OPEN_STATUSES, review_actions, review_items

BREAK = timedelta(minutes=10)
DECIDING = ("approve", "reject")
SENIOR_ROLES = ("senior", "admin")


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


@dataclass(slots=True)
class ReviewerStats:
    username: str
    role: str
    decisions: int = 0
    approvals: int = 0
    rejections: int = 0
    escalations: int = 0
    decisions_per_hour: float = 0.0
    median_seconds: float | None = None
    """Median gap between this reviewer's consecutive decisions (breaks over ``BREAK`` left out)."""
    overturned: int = 0
    """Decisions a senior later reversed on the same item."""
    overturn_rate: float | None = None
    sla_breaches: int = 0
    """Final decisions this reviewer made after the item's service-level target had passed."""


@dataclass(slots=True)
class QueueStats:
    category: str
    open: int = 0
    open_breached: int = 0
    decided: int = 0
    decided_breached: int = 0
    median_wait_seconds: float | None = None
    """Median time from entering the queue to the final decision, of the items decided in the window."""


@dataclass(slots=True)
class TeamStats:
    since: datetime
    until: datetime
    reviewers: list[ReviewerStats] = field(default_factory=list)
    queues: list[QueueStats] = field(default_factory=list)
    double_reviewed: int = 0
    agreed: int = 0

    @property
    def agreement_rate(self) -> float | None:
        return self.agreed / self.double_reviewed if self.double_reviewed else None


def team_stats(db: Engine, config: ReviewConfig, *, window: timedelta = timedelta(hours=24),
               at: datetime | None = None, items: Collection[int] | None = None) -> TeamStats:
    """The figures of the ``window`` before ``at`` (default: now); ``items`` narrows the reviewer and agreement
    figures to the actions on those items (the queue figures always cover the whole queue)."""
    until = at or datetime.now(UTC)
    since = until - window
    a, c = review_actions.c, review_items.c
    only = [a.item_id.in_(sorted(items))] if items is not None else []
    with db.connect() as conn:
        actions = conn.execute(
            select(a.item_id, a.username, a.role, a.action, a.created_at, c.created_at.label("item_created"),
                   c.severity, c.status, c.category)
            .join(review_items, review_items.c.id == a.item_id)
            .where(a.created_at >= since, a.created_at <= until, *only)
            .order_by(a.id)
        ).all()
        open_rows = conn.execute(
            select(c.category, c.severity, c.created_at).where(c.status.in_(OPEN_STATUSES))
        ).all()
        decided_rows = conn.execute(
            select(c.category, c.severity, c.created_at, c.decided_at)
            .where(c.decided_at >= since, c.decided_at <= until)
        ).all()
        # every action on the items acted on in the window, to see what came after each decision
        item_ids = sorted({r.item_id for r in actions})
        history: dict[int, list[Any]] = defaultdict(list)
        for chunk in range(0, len(item_ids), 500):
            for r in conn.execute(select(a.item_id, a.username, a.role, a.action, a.created_at)
                                  .where(a.item_id.in_(item_ids[chunk:chunk + 500])).order_by(a.id)):
                history[r.item_id].append(r)

    def late(severity: str, created: datetime, decided: datetime) -> bool:
        return (_aware(decided) - _aware(created)).total_seconds() > config.queue.sla_seconds(severity)

    by_user: dict[str, ReviewerStats] = {}
    times: dict[str, list[datetime]] = defaultdict(list)
    for r in actions:
        s = by_user.setdefault(r.username, ReviewerStats(r.username, r.role))
        times[r.username].append(_aware(r.created_at))
        if r.action == "escalate":
            s.escalations += 1
            continue
        if r.action not in DECIDING:
            continue
        s.decisions += 1
        if r.action == "approve":
            s.approvals += 1
        else:
            s.rejections += 1
        later = [h for h in history[r.item_id] if _aware(h.created_at) > _aware(r.created_at)
                 and h.action in DECIDING and h.username != r.username]
        if any(h.role in SENIOR_ROLES and h.action != r.action for h in later):
            s.overturned += 1
        final = r.status in ("approved", "rejected") and not later
        if final and late(r.severity, r.item_created, r.created_at):
            s.sla_breaches += 1
    for name, s in by_user.items():
        ts = sorted(times[name])
        gaps = [(b - a_).total_seconds() for a_, b in itertools.pairwise(ts) if b - a_ <= BREAK]
        active_hours = max((ts[-1] - ts[0]).total_seconds(), 300.0) / 3600 if ts else 0.0
        s.decisions_per_hour = round(s.decisions / active_hours, 1) if active_hours else 0.0
        s.median_seconds = round(statistics.median(gaps), 1) if gaps else None
        s.overturn_rate = round(s.overturned / s.decisions, 3) if s.decisions else None

    double = agreed = 0
    for steps in history.values():
        deciding = [h for h in steps if h.action in DECIDING]
        if len({h.username for h in deciding}) >= 2:
            double += 1
            agreed += len({h.action for h in deciding}) == 1

    queues: dict[str, QueueStats] = {}
    for r in open_rows:
        q = queues.setdefault(r.category, QueueStats(r.category))
        q.open += 1
        q.open_breached += late(r.severity, r.created_at, until)
    waits: dict[str, list[float]] = defaultdict(list)
    for r in decided_rows:
        q = queues.setdefault(r.category, QueueStats(r.category))
        q.decided += 1
        q.decided_breached += late(r.severity, r.created_at, r.decided_at)
        waits[r.category].append((_aware(r.decided_at) - _aware(r.created_at)).total_seconds())
    for name, w in waits.items():
        queues[name].median_wait_seconds = round(statistics.median(w), 1)
    return TeamStats(since=since, until=until,
                     reviewers=sorted(by_user.values(), key=lambda s: (-s.decisions, s.username)),
                     queues=sorted(queues.values(), key=lambda q: (-q.open_breached, -q.open, q.category)),
                     double_reviewed=double, agreed=agreed)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(stats: TeamStats) -> bytes:
    """The team figures as Prometheus gauges (appended to ``/metrics``), over the same window as the page."""
    lines: list[str] = []

    def gauge(name: str, help_: str, rows: list[tuple[str, str, float | None]]) -> None:
        lines.extend((f"# HELP {name} {help_}", f"# TYPE {name} gauge"))
        lines.extend(f'{name}{{{key}="{_label(value)}"}} {number}' for key, value, number in rows
                     if number is not None)

    r, q = stats.reviewers, stats.queues
    gauge("smsguard_review_decisions_per_hour", "Decisions per active hour, last 24 h",
          [("reviewer", s.username, s.decisions_per_hour) for s in r])
    gauge("smsguard_review_median_decide_seconds", "Median seconds between a reviewer's decisions, last 24 h",
          [("reviewer", s.username, s.median_seconds) for s in r])
    gauge("smsguard_review_overturn_ratio", "Share of a reviewer's decisions a senior reversed, last 24 h",
          [("reviewer", s.username, s.overturn_rate) for s in r])
    gauge("smsguard_review_open_items", "Open review items per queue (category)", [("queue", x.category, x.open)
                                                                                   for x in q])
    gauge("smsguard_review_sla_breaches", "Open items past their service-level target, per queue",
          [("queue", x.category, x.open_breached) for x in q])
    lines.extend(("# HELP smsguard_review_agreement_ratio Agreement on items two reviewers decided, last 24 h",
                  "# TYPE smsguard_review_agreement_ratio gauge"))
    if stats.agreement_rate is not None:
        lines.append(f"smsguard_review_agreement_ratio {stats.agreement_rate}")
    return ("\n".join(lines) + "\n").encode()
