"""The undo grace window (issue 20) on both backends: a final decision stays pending release for
``review.undo_seconds``; its reviewer may undo it (the item comes back to them, claimed, and nothing downstream
happened); after the window an undo is refused with 409 ``review.undo_expired`` and the release worker
releases it by itself: the source's handler, the training label, the webhook and the customer's status."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from smsguard import review, webhooks
from smsguard.core import ConflictError, ForbiddenError
from smsguard.review import ReviewPolicy
from smsguard.review._queue import Queue
from smsguard.review._service import ReviewService
from smsguard.review._tables import review_actions, review_items, review_labels
from smsguard.webauth import http_status

UNDO = 30.0
calls: list[review.Decision] = []


def _handler(conn, decision: review.Decision) -> None:
    calls.append(decision)


review.register_decision_handler("undo-test", _handler)


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    calls.clear()  # item ids repeat across the two backends


@pytest.fixture
def uenv(make_env):
    env = make_env()
    config = dataclasses.replace(env.service.config, queue=ReviewPolicy(undo_seconds=UNDO))
    env.service = ReviewService(env.db, Queue(env.db, env.r, namespace=env.namespace, config=config), config)
    webhooks.create_endpoint(env.db, env.tenant_id, url="https://hooks.example.com/sms", events=["review.decided"],
                             actor="test")
    return env


def _later(seconds: float = UNDO + 1) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _webhooks(env, item: int) -> int:
    from smsguard.webhooks._tables import events

    with env.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)
                                .where(events.c.subject == f"review:{item}")).scalar_one())


def _label(env, item: int):
    with env.db.connect() as conn:
        return conn.execute(select(review_labels.c.label).where(review_labels.c.item_id == item)).scalar_one_or_none()


def _mine(env, item: int) -> list[int]:
    return [c.item_id for c in calls if c.item_id == item]


def test_a_decision_waits_for_its_window_then_is_released_without_a_manual_step(uenv, users) -> None:
    item = uenv.submit(source="undo-test")
    uenv.service.claim(users["rev1"], item)
    out = uenv.service.decide(users["rev1"], item, version=1, action="reject", reason="scam", category="fraud")
    assert out.final and out.decided_ids == [item] and out.release_at is not None
    assert "unless you undo" in out.message
    row = uenv.service._row(item)
    assert row.status == "rejected" and row.release_at is not None and row.undo_status == "pending"
    # pending release: nothing downstream yet
    assert _mine(uenv, item) == [] and _label(uenv, item) is None and _webhooks(uenv, item) == 0
    assert uenv.service.release_due() == 0  # the window is still open
    assert _mine(uenv, item) == []
    # the stream entry is kept (an undo gives the item back) and not trimmed by the reaper meanwhile
    uenv.queue.reap()
    [lease] = uenv.queue.leases([row.stream_id])
    assert not lease.missing and lease.owner == users["rev1"].consumer

    assert uenv.service.release_due(at=_later()) >= 1
    assert _mine(uenv, item) == [item] and calls[-1].approved is False and calls[-1].reason == "scam"
    assert calls[-1].deciders == [users["rev1"].username] and calls[-1].category == "fraud"
    assert _label(uenv, item) == 1 and _webhooks(uenv, item) == 1
    row = uenv.service._row(item)
    assert row.release_at is None and row.status == "rejected"
    [lease] = uenv.queue.leases([row.stream_id])
    assert lease.missing  # acknowledged and trimmed only after the release committed
    # released once only
    uenv.service.release_due(at=_later(2 * UNDO))
    assert _mine(uenv, item) == [item]


def test_undo_within_the_window_restores_the_item_claimed_and_nothing_happened(uenv, users) -> None:
    item = uenv.submit(source="undo-test")
    uenv.service.claim(users["rev1"], item)
    uenv.service.decide(users["rev1"], item, version=1, action="approve")
    out = uenv.service.undo(users["rev1"], [item])
    assert "undone" in out.message and out.status == "pending"
    row = uenv.service._row(item)
    assert (row.status, row.version, row.release_at, row.decided_at, row.undo_status) == ("pending", 3, None,
                                                                                         None, None)
    with uenv.db.connect() as conn:
        assert conn.execute(select(func.count()).where(review_actions.c.item_id == item)).scalar_one() == 0
    # it is the undoer's again: claimed by them, invisible to the others
    [lease] = uenv.queue.leases([row.stream_id])
    assert lease.owner == users["rev1"].consumer
    got, holder = uenv.service.claim(users["rev2"], item)
    assert not got and holder == users["rev1"].username
    # the window passes: nothing is released, nothing downstream ever happened
    uenv.service.release_due(at=_later())
    assert _mine(uenv, item) == [] and _label(uenv, item) is None and _webhooks(uenv, item) == 0
    # and it can be decided again, differently
    uenv.service.decide(users["rev1"], item, version=3, action="reject", reason="on second thoughts")
    uenv.service.release_due(at=_later())
    assert _label(uenv, item) == 1 and calls[-1].item_id == item and calls[-1].approved is False
    from smsguard.audit._tables import events

    with uenv.db.connect() as conn:
        kinds = list(conn.execute(select(events.c.event_type).where(events.c.subject == f"review:{item}")
                                  .order_by(events.c.id)).scalars())
    assert kinds == ["review.approve", "review.undo", "review.reject", "review.released"]


def test_undo_after_the_window_is_refused_with_409(uenv, users) -> None:
    item = uenv.submit(source="undo-test")
    uenv.service.claim(users["rev1"], item)
    uenv.service.decide(users["rev1"], item, version=1, action="approve")
    uenv.service.release_due(at=_later())
    with pytest.raises(ConflictError) as e:
        uenv.service.undo(users["rev1"], [item])
    assert e.value.code == "review.undo_expired" and http_status(e.value) == 409
    assert "released" in e.value.message
    assert uenv.service._row(item).status == "approved" and _mine(uenv, item) == [item]


def test_undo_when_the_deadline_passed_but_the_worker_has_not_run_yet_is_refused(uenv, users) -> None:
    item = uenv.submit(source="undo-test")
    uenv.service.claim(users["rev1"], item)
    uenv.service.decide(users["rev1"], item, version=1, action="approve")
    with uenv.db.begin() as conn:  # the window closed a moment ago
        conn.execute(review_items.update().where(review_items.c.id == item)
                     .values(release_at=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(ConflictError) as e:
        uenv.service.undo(users["rev1"], [item])
    assert e.value.code == "review.undo_expired" and "closed" in e.value.message
    assert uenv.service.release_due() >= 1 and _mine(uenv, item) == [item]


def test_only_the_deciding_reviewer_may_undo_and_nothing_else_is_undoable(uenv, users) -> None:
    item = uenv.submit(source="undo-test")
    uenv.service.claim(users["rev1"], item)
    with pytest.raises(ConflictError) as e:
        uenv.service.undo(users["rev1"], [item])
    assert e.value.code == "review.undo_nothing"
    uenv.service.decide(users["rev1"], item, version=1, action="approve")
    with pytest.raises(ForbiddenError) as f:
        uenv.service.undo(users["rev2"], [item])
    assert f.value.code == "review.undo_forbidden" and http_status(f.value) == 403
    with pytest.raises(ForbiddenError):
        uenv.service.undo(users["aud"], [item])
    assert uenv.service._row(item).release_at is not None
    uenv.service.release_due(at=_later())


def test_four_eyes_undo_of_the_second_approval_goes_back_to_second(uenv, users) -> None:
    item = uenv.submit(source="undo-test", severity="high")
    uenv.service.claim(users["rev1"], item)
    assert uenv.service.decide(users["rev1"], item, version=1, action="approve").status == "second"
    uenv.service.claim(users["sen1"], item)
    assert uenv.service.decide(users["sen1"], item, version=2, action="approve").status == "approved"
    uenv.service.undo(users["sen1"], [item])
    row = uenv.service._row(item)
    assert row.status == "second" and row.version == 4
    # the first approval stands; the senior may give the second again, and then it is released with both
    uenv.service.decide(users["sen1"], item, version=4, action="approve")
    uenv.service.release_due(at=_later())
    assert calls[-1].item_id == item and calls[-1].deciders == [users["rev1"].username, users["sen1"].username]


def test_bulk_decisions_are_undone_together(uenv, users) -> None:
    items = [uenv.submit(source="undo-test") for _ in range(3)]
    out = uenv.service.bulk_decide(users["rev1"], items, action="approve")
    assert sorted(out.decided_ids) == items
    back = uenv.service.undo(users["rev1"], out.decided_ids)
    assert back.bulk_done == 3 and all(uenv.status(i) == "pending" for i in items)
    uenv.service.release_due(at=_later())
    assert all(_mine(uenv, i) == [] for i in items)


def test_customer_sees_an_api_verdict_decision_only_after_release(uenv, users) -> None:
    ref = f"v_{uuid.uuid4().hex[:12]}"
    item = uenv.submit(source="api", ref=ref)
    uenv.service.claim(users["rev1"], item)
    uenv.service.decide(users["rev1"], item, version=1, action="reject", reason="loan ad")
    assert review.api_review_status(uenv.db, ref) == {"status": "pending", "decided_at": None}
    uenv.service.release_due(at=_later())
    status = review.api_review_status(uenv.db, ref)
    assert status["status"] == "rejected" and status["decided_at"]


def test_a_killed_process_leaves_the_deadline_in_sql_and_the_next_one_releases(uenv, make_env, users) -> None:
    item = uenv.submit(source="undo-test")
    uenv.service.claim(users["rev1"], item)
    uenv.service.decide(users["rev1"], item, version=1, action="approve")
    # the deciding process is gone (its service object, Redis client and memory with it); another one, built
    # from scratch on the same database, finds the deadline in SQL and releases it
    other = make_env(tenant_id=uenv.tenant_id)
    config = dataclasses.replace(other.service.config, queue=ReviewPolicy(undo_seconds=UNDO))
    fresh = ReviewService(other.db, Queue(other.db, other.r, namespace=other.namespace, config=config), config)
    assert fresh.release_due(at=_later()) >= 1
    assert _mine(uenv, item) == [item] and _label(uenv, item) == 0


def test_a_source_refusing_the_release_reopens_the_item(uenv, users) -> None:
    from smsguard.core import ConflictError as Refused

    def refuse(conn, decision) -> None:
        raise Refused("the batch was cancelled meanwhile", where="batch", code="batch.cancelled")

    review.register_decision_handler("undo-refuse", refuse)
    item = uenv.submit(source="undo-refuse")
    uenv.service.claim(users["rev1"], item)
    uenv.service.decide(users["rev1"], item, version=1, action="approve")
    uenv.service.release_due(at=_later())
    row = uenv.service._row(item)
    assert row.status == "pending" and row.release_at is None and _label(uenv, item) is None


def test_without_a_window_decisions_are_released_at_once(env, users) -> None:
    item = env.submit(source="undo-test")
    env.service.claim(users["rev1"], item)
    out = env.service.decide(users["rev1"], item, version=1, action="approve")
    assert out.release_at is None and out.decided_ids == []
    assert _mine(env, item) == [item] and _label(env, item) == 0
    with pytest.raises(ConflictError) as e:
        env.service.undo(users["rev1"], [item])
    assert e.value.code == "review.undo_expired"


def test_a_failing_release_does_not_hold_up_the_others(uenv, users) -> None:
    def broken(conn, decision) -> None:
        raise RuntimeError("database hiccup")

    review.register_decision_handler("undo-broken", broken)
    bad = uenv.submit(source="undo-broken")
    good = uenv.submit(source="undo-test")
    for item in (bad, good):
        uenv.service.claim(users["rev1"], item)
        uenv.service.decide(users["rev1"], item, version=1, action="approve")
    uenv.service.release_due(at=_later())
    assert _mine(uenv, good) == [good] and uenv.service._row(good).release_at is None
    row = uenv.service._row(bad)
    assert row.status == "approved" and row.release_at is not None  # still pending: retried next turn
    review.register_decision_handler("undo-broken", _handler)
    uenv.service.release_due(at=_later())
    assert uenv.service._row(bad).release_at is None and _mine(uenv, bad) == [bad]
