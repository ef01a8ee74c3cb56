"""The review queue on both backends: leases, double claims, a crashed reviewer, Redis losing its data,
optimistic versions, the four-eyes rule, bulk decisions, decision handlers, labels and audit events."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from smsguard import review
from smsguard.core import ConflictError, ForbiddenError, SmsguardError
from smsguard.review import SqlReviewLabelSource
from smsguard.review._service import Filters, ReviewError
from smsguard.review._tables import review_items, review_labels
from smsguard.training.reviews import ReviewLabelSource


def test_submit_is_idempotent_and_belongs_to_the_callers_transaction(env) -> None:
    verdict = {"decision": "review", "score": 0.5, "reasons": []}
    with env.db.begin() as conn:
        a = review.submit(conn, tenant_id=env.tenant_id, source="batch_content", source_ref="b1:h1", text="x",
                          verdict=verdict, batch_size=3, sample_recipients=["13912345678"])
        b = review.submit(conn, tenant_id=env.tenant_id, source="batch_content", source_ref="b1:h1", text="x",
                          verdict=verdict)
    assert a == b
    with env.db.connect() as conn:
        row = conn.execute(select(review_items).where(review_items.c.id == a)).one()
    assert row.sample_recipients == '["139****5678"]' and row.status == "pending"
    conn = env.db.connect()
    trans = conn.begin()
    review.submit(conn, tenant_id=env.tenant_id, source="batch_content", source_ref="b1:rolled-back", text="y",
                  verdict=verdict)
    trans.rollback()
    conn.close()
    with env.db.connect() as conn:
        assert conn.execute(select(review_items.c.id).where(review_items.c.source_ref == "b1:rolled-back")).first() \
            is None


def test_a_claimed_item_is_invisible_until_its_lease_expires_then_it_is_redelivered(make_env, users) -> None:
    env = make_env(lease=0.4)
    item = env.submit()
    assert env.service.claim_next(users["rev1"]) == item
    assert env.service.claim_next(users["rev2"]) is None  # the only item is leased
    time.sleep(0.5)
    assert env.service.claim_next(users["rev2"]) == item  # lease ran out: delivered again
    assert env.service.claim_next(users["rev1"]) is None


def test_a_reviewer_can_extend_a_lease(make_env, users) -> None:
    # Margins of a second or more: on a loaded CI host a 0.5 s lease ran out between two renewals.
    env = make_env(lease=3.0)
    item = env.submit()
    assert env.service.claim_next(users["rev1"]) == item
    for _ in range(3):
        time.sleep(1.5)
        assert env.service.extend(users["rev1"], item)
    assert env.service.claim_next(users["rev2"]) is None  # 4.5 s after the claim, past one lease, still rev1's
    assert not env.service.extend(users["rev2"], item)


def test_two_reviewers_racing_for_one_item_never_both_get_it(env, users) -> None:
    item = env.submit()
    env.queue.dispatch()
    wins: list[int | None] = []
    barrier = threading.Barrier(6)

    def grab(user) -> None:
        barrier.wait()
        wins.append(env.service.claim_next(user))

    threads = [threading.Thread(target=grab, args=(users[n],)) for n in ("rev1", "rev2", "sen1", "sen2") * 2][:6]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(w for w in wins if w is not None) in ([item], [item, item])
    # the same user in two tabs may hold it twice; two different users never do
    holders = {env.queue.leases([env.service._row(item).stream_id])[0].owner}
    assert len(holders) == 1


def test_a_crashed_reviewer_loses_the_item_and_cannot_decide_it_later(make_env, users) -> None:
    env = make_env(lease=0.3)
    item = env.submit()
    assert env.service.claim_next(users["rev1"]) == item
    version = env.service._row(item).version
    # rev1's browser dies: nothing is released, the lease simply runs out
    time.sleep(0.4)
    assert env.service.claim_next(users["rev2"]) == item
    env.service.decide(users["rev2"], item, version=version, action="approve")
    with pytest.raises(ConflictError, match="already approved"):
        env.service.decide(users["rev1"], item, version=version, action="reject", reason="spam")
    assert env.status(item) == "approved"


def test_decided_entries_are_acknowledged_and_trimmed(env, users) -> None:
    items = [env.submit() for _ in range(3)]
    env.queue.dispatch()
    assert env.queue.stats() == {"length": 3, "pending": 3}
    for item in items[:2]:
        assert env.service.claim_next(users["rev1"]) == item
        env.service.decide(users["rev1"], item, version=1, action="reject", reason="loan spam")
    assert env.queue.stats() == {"length": 1, "pending": 1}


def test_redis_losing_its_data_mid_review_loses_nothing(env, users) -> None:
    items = [env.submit() for _ in range(6)]
    a = env.service.claim_next(users["rev1"])
    env.service.decide(users["rev1"], a, version=1, action="approve")
    b = env.service.claim_next(users["rev1"])  # rev1 holds b when Redis goes away
    env.flush_redis()
    # b's decision still goes through (SQL is the truth; the queue is re-driven from it)
    env.service.decide(users["rev1"], b, version=1, action="reject", reason="fraud")
    seen = set()
    while (nxt := env.service.claim_next(users["rev2"])) is not None:
        env.service.decide(users["rev2"], nxt, version=1, action="approve")
        seen.add(nxt)
    assert seen == set(items) - {a, b}
    assert [env.status(i) for i in items].count("approved") == 5
    assert env.queue.stats() == {"length": 0, "pending": 0}


def test_the_background_dispatch_redrives_after_a_flush(env, users) -> None:
    items = [env.submit() for _ in range(4)]
    assert env.queue.dispatch() == 4
    env.flush_redis()
    assert env.queue.dispatch() == 4  # new epoch: every open item again
    assert env.queue.stats()["pending"] == 4
    assert env.queue.dispatch() == 0
    assert env.service.claim_next(users["rev1"]) == items[0]


def test_optimistic_version_check_lets_only_one_decision_through(make_env, users) -> None:
    env = make_env(lease=0.2)
    item = env.submit()
    env.service.claim(users["rev1"], item)
    time.sleep(0.3)
    env.service.claim(users["rev2"], item)
    results: list[str] = []

    def decide(user, action) -> None:
        try:
            env.service.decide(user, item, version=1, action=action, reason="r")
            results.append("ok")
        except SmsguardError as e:
            results.append(e.code)

    threads = [threading.Thread(target=decide, args=(users["rev1"], "approve")),
               threading.Thread(target=decide, args=(users["rev2"], "reject"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count("review.conflict") == 1


def test_four_eyes_needs_two_distinct_approvers_the_second_senior(env, users) -> None:
    item = env.submit(severity="high")
    big = env.submit(batch_size=50_000)
    assert env.service._row(item).required_approvals == 2 and env.service._row(big).required_approvals == 2
    env.service.claim(users["rev1"], item)
    out = env.service.decide(users["rev1"], item, version=1, action="approve")
    assert not out.final and env.status(item) == "second"
    with pytest.raises(ForbiddenError):  # a plain reviewer cannot give the second approval
        env.service.decide(users["rev2"], item, version=2, action="approve")
    assert env.service.claim_next(users["rev2"], Filters(status="second")) is None
    env.service.decide(users["sen1"], big, version=1, action="approve")
    with pytest.raises(ForbiddenError, match="four-eyes"):  # the same senior twice
        env.service.decide(users["sen1"], big, version=2, action="approve")
    out = env.service.decide(users["sen1"], item, version=2, action="approve")
    assert out.final and env.status(item) == "approved"
    labels = {i: lbl for i, lbl in _labels(env)}
    assert labels[item] == 0 and big not in labels


def test_escalated_items_go_to_seniors(env, users) -> None:
    item = env.submit()
    assert env.service.claim_next(users["rev1"]) == item
    env.service.decide(users["rev1"], item, version=1, action="escalate")
    assert env.status(item) == "escalated"
    assert env.service.claim_next(users["rev2"]) is None
    assert env.service.claim_next(users["sen1"]) == item
    with pytest.raises(ReviewError, match="reason"):
        env.service.decide(users["sen1"], item, version=2, action="reject")
    env.service.decide(users["sen1"], item, version=2, action="reject", reason="illegal loan", category="loan")
    assert env.status(item) == "rejected"


def test_auditors_read_but_never_act(env, users) -> None:
    item = env.submit()
    assert env.service.claim_next(users["aud"]) is None
    with pytest.raises(ForbiddenError):
        env.service.decide(users["aud"], item, version=1, action="approve")
    view = env.service.item_view(users["aud"], item)
    assert not view.can_decide and "read-only" in view.why_not


def test_bulk_decision_settles_identical_content(env, users) -> None:
    text = "【甲商城】低息贷款，额度5万，回T退订"
    items = [env.submit(text) for _ in range(4)]
    other = env.submit()
    env.service.claim(users["rev2"], items[3])  # held by someone else: skipped
    env.service.claim(users["rev1"], items[0])
    out = env.service.decide(users["rev1"], items[0], version=1, action="reject", reason="loan spam", bulk=True)
    assert (out.bulk_done, out.bulk_skipped) == (2, 1)
    assert [env.status(i) for i in items] == ["rejected"] * 3 + ["pending"]
    assert env.status(other) == "pending"


def test_decision_handlers_run_inside_the_decision_transaction(env, users) -> None:
    calls: list[review.Decision] = []

    def handler(conn, decision: review.Decision) -> None:
        calls.append(decision)
        if decision.reason == "boom":
            raise RuntimeError("batch release failed")

    review.register_decision_handler("handler-test", handler)
    item = env.submit(source="handler-test", ref="b7:abc")
    env.service.claim(users["rev1"], item)
    with pytest.raises(RuntimeError):
        env.service.decide(users["rev1"], item, version=1, action="reject", reason="boom")
    assert env.status(item) == "pending"  # rolled back with the handler
    assert env.service._row(item).version == 1
    env.service.decide(users["rev1"], item, version=1, action="reject", reason="scam")
    d = calls[-1]
    assert (d.item_id, d.source, d.source_ref, d.approved, d.reason) == (item, "handler-test", "b7:abc", False, "scam")
    assert d.deciders == [users["rev1"].username]


def test_decisions_become_training_labels_and_audit_events(env, users) -> None:
    ok, bad = env.submit(), env.submit()
    env.service.claim(users["rev1"], ok)
    env.service.decide(users["rev1"], ok, version=1, action="approve")
    env.service.claim(users["rev1"], bad)
    env.service.decide(users["rev1"], bad, version=1, action="reject", reason="scam", category="fraud")
    labels = dict(_labels(env))
    assert labels[ok] == 0 and labels[bad] == 1
    source = SqlReviewLabelSource(env.db, tenant_id=env.tenant_id)
    assert isinstance(source, ReviewLabelSource)
    pairs = list(source.labels())
    assert (env.service._row(bad).text, 1) in pairs and (env.service._row(ok).text, 0) in pairs
    assert ("fraud" in [c for _, _, c in source.labels_with_category()])
    from smsguard.audit._tables import events

    with env.db.connect() as conn:
        rows = conn.execute(select(events.c.event_type, events.c.actor, events.c.subject)
                            .where(events.c.subject.in_([f"review:{ok}", f"review:{bad}"]))).all()
    assert {(r.event_type, r.subject) for r in rows} == {("review.approve", f"review:{ok}"),
                                                         ("review.reject", f"review:{bad}")}
    assert all(r.actor == f"user:{users['rev1'].username}" for r in rows)


def test_similar_items_and_highlights(env, users) -> None:
    text = "【乙银行】无抵押贷款，最高20万，当天到账"
    first = env.submit(text)
    env.service.claim(users["rev1"], first)
    env.service.decide(users["rev1"], first, version=1, action="reject", reason="loan spam")
    near = env.submit("【乙银行】无抵押贷款，最高30万，次日到账")
    view = env.service.item_view(users["rev1"], near)
    assert view.similar and view.similar[0]["id"] == first and view.similar[0]["similarity"] >= 0.3
    marked = [piece for piece, idx, _ in view.segments if idx]
    assert marked == ["贷款"]


def test_filters_order_and_counts(env, users) -> None:
    low = env.submit()
    high = env.submit(priority=5)
    view = env.service.queue_view(Filters())
    assert view.total == 2 and view.counts["pending"] == 2 and view.oldest_age_seconds is not None
    assert [r["id"] for r in view.rows] == [high, low]
    assert env.service.queue_view(Filters(min_priority=1)).total == 1
    assert env.service.queue_view(Filters(min_age_minutes=60)).total == 0
    assert env.service.claim_next(users["rev1"], Filters(min_priority=1)) == high


def _labels(env) -> list[tuple[int, int]]:
    with env.db.connect() as conn:
        return [tuple(r) for r in conn.execute(select(review_labels.c.item_id, review_labels.c.label))]
