"""Team statistics from SQL on both backends: decisions, overturns by a senior, agreement on double-reviewed
items, service-level breaches per reviewer and per queue, and their /metrics lines."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from smsguard.core import PROJECT_ROOT
from smsguard.review._service import now
from smsguard.review._stats import metrics_text, team_stats
from smsguard.review._tables import review_actions, review_items
from smsguard.review._users import create_user
from smsguard.runtime import PolicyDocument

POLICY = PolicyDocument.load(PROJECT_ROOT / "policy.yaml")


@pytest.fixture
def wb(make_env):
    return make_env(policy=POLICY)


@pytest.fixture
def team(migrated_db):
    """Reviewers of this test alone: the figures cover every decision in the database's last 24 h."""
    tag = uuid.uuid4().hex[:6]
    return {name: create_user(migrated_db, f"{name}-{tag}", "correct horse battery", role)
            for name, role in (("rev1", "reviewer"), ("sen1", "senior"), ("sen2", "senior"))}


def decide(env, user, item, action, **kw):
    return env.service.decide(user, item, version=env.service._row(item).version, action=action, **kw)


def test_team_stats_count_what_a_team_lead_asks(wb, team) -> None:
    rev1, sen1, sen2 = team["rev1"], team["sen1"], team["sen2"]
    tag = uuid.uuid4().hex[:6]  # queues of this test alone
    loan, fraud, gambling = f"loan-{tag}", f"fraud-{tag}", f"gambling-{tag}"
    plain = [wb.submit(category=loan) for _ in range(3)]
    for item in plain:
        decide(wb, rev1, item, "approve")
    overturned = wb.submit(severity="high", category=fraud)  # four-eyes: rev1 approves, a senior rejects
    decide(wb, rev1, overturned, "approve")
    decide(wb, sen1, overturned, "reject", reason_code="fraud")
    agreed = wb.submit(severity="high", category=fraud)  # four-eyes: both approve
    decide(wb, rev1, agreed, "approve")
    decide(wb, sen2, agreed, "approve")
    late = wb.submit(severity="low", category=gambling)  # waited 5 h against a 4 h target
    with wb.db.begin() as conn:
        conn.execute(update(review_items).where(review_items.c.id == late)
                     .values(created_at=now() - timedelta(hours=5)))
    decide(wb, sen1, late, "reject", reason_code="gambling")
    still_open = wb.submit(severity="high", category=fraud)
    with wb.db.begin() as conn:
        conn.execute(update(review_items).where(review_items.c.id == still_open)
                     .values(created_at=now() - timedelta(minutes=30)))

    stats = team_stats(wb.db, wb.service.config)
    by = {s.username: s for s in stats.reviewers}
    r1 = by[rev1.username]
    assert (r1.decisions, r1.approvals, r1.rejections) == (5, 5, 0)
    assert r1.overturned == 1 and r1.overturn_rate == 0.2
    assert r1.sla_breaches == 0
    assert r1.median_seconds is not None and r1.decisions_per_hour > 0
    s1 = by[sen1.username]
    assert (s1.decisions, s1.rejections, s1.overturned, s1.sla_breaches) == (2, 2, 0, 1)
    mine = {overturned, agreed}
    assert stats.double_reviewed >= 2 and stats.agreed >= 1  # other tests' four-eyes items count too
    assert team_stats(wb.db, wb.service.config, items=mine).agreement_rate == 0.5
    queues = {q.category: q for q in stats.queues}
    assert (queues[fraud].open, queues[fraud].open_breached) == (1, 1)  # 30 min against 15
    assert (queues[gambling].decided, queues[gambling].decided_breached) == (1, 1)
    assert queues[loan].decided == 3 and queues[loan].median_wait_seconds is not None
    assert stats.queues[0].open_breached >= 1  # breaches first

    text = metrics_text(stats).decode()
    assert f'smsguard_review_overturn_ratio{{reviewer="{rev1.username}"}} 0.2' in text
    assert f'smsguard_review_sla_breaches{{queue="{fraud}"}} 1' in text
    assert "smsguard_review_agreement_ratio " in text


def test_actions_outside_the_window_do_not_count(wb, team) -> None:
    item = wb.submit()
    decide(wb, team["rev1"], item, "approve")
    with wb.db.begin() as conn:
        conn.execute(update(review_actions).where(review_actions.c.item_id == item)
                     .values(created_at=now() - timedelta(days=2)))
    stats = team_stats(wb.db, wb.service.config)
    assert team["rev1"].username not in {s.username for s in stats.reviewers}
