"""Signature applications in the main review queue (issue 20): an application (and a resubmission) is an item
of source ``signature`` with its SLA timer, found with the source filter; deciding it on its own page closes the
queue item, and deciding the queue item decides the application (after the undo window, when there is one)."""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import or_, select

from smsguard import filing
from smsguard.review import ReviewPolicy
from smsguard.review._queue import Queue
from smsguard.review._service import Filters, ReviewError, ReviewService
from smsguard.review._tables import review_items, review_labels

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def vault() -> filing.DocumentVault:
    return filing.DocumentVault([(1, os.urandom(32))])


def _apply(env, vault) -> dict:
    name = "签名" + uuid.uuid4().hex[:8]
    return filing.apply(env.db, vault, env.tenant_id, name=name, kind="company", use="self",
                        files=[("licence.pdf", PDF)], actor="test")


def _items(env, sid: int) -> list:
    with env.db.connect() as conn:
        ref = review_items.c.source_ref
        return conn.execute(select(review_items).where(review_items.c.source == "signature",
                                                       or_(ref == str(sid), ref.like(f"{sid}:%")))
                            .order_by(review_items.c.id)).all()


def test_an_application_is_a_queue_item_filtered_by_source_with_its_sla(env, vault) -> None:
    sig = _apply(env, vault)
    [item] = _items(env, sig["id"])
    assert item.status == "pending" and item.tenant_id == env.tenant_id and f"【{sig['name']}】" in item.text
    view = env.service.queue_view(Filters.from_query({"source": "signature"}))
    rows = {r["id"]: r for r in view.rows}
    assert item.id in rows and all(r["source"] == "signature" for r in view.rows)
    # low severity: the policy's low target (240 min by default) runs from the application's filing
    assert rows[item.id]["sla_state"] == "ok" and 0 < rows[item.id]["sla_left_seconds"] <= 240 * 60
    others = env.service.queue_view(Filters.from_query({"source": "api"}))
    assert item.id not in {r["id"] for r in others.rows}
    with pytest.raises(ReviewError) as e:
        Filters.from_query({"source": "signatures"})
    assert e.value.where == "query source"


def test_deciding_on_the_signature_page_closes_the_queue_item(env, vault) -> None:
    sig = _apply(env, vault)
    filing.decide(env.db, sig["id"], approve=False, reason="营业执照已过期", reviewer="user:senior")
    [item] = _items(env, sig["id"])
    assert item.status == "rejected" and item.decision_reason == "营业执照已过期"
    assert item.id not in {r["id"] for r in env.service.queue_view(Filters.from_query({"source": "signature"})).rows}
    # resubmitted: a new queue item, decided again on the page
    filing.resubmit(env.db, vault, env.tenant_id, sig["id"], files=[("licence2.pdf", PDF)], actor="test")
    first, second = _items(env, sig["id"])
    assert first.status == "rejected"
    assert second.status == "pending" and second.source_ref.startswith(f"{sig['id']}:")
    filing.decide(env.db, sig["id"], approve=True, reason="", reviewer="user:senior")
    assert _items(env, sig["id"])[1].status == "approved"


def test_deciding_in_the_main_queue_decides_the_application(env, vault, users) -> None:
    sig = _apply(env, vault)
    [item] = _items(env, sig["id"])
    env.service.claim(users["rev1"], item.id)
    env.service.decide(users["rev1"], item.id, version=item.version, action="reject", reason="签名与报备主体不符")
    got = filing.get(env.db, None, sig["id"])
    assert got["status"] == "rejected" and got["reason"] == "签名与报备主体不符"
    with env.db.connect() as conn:  # an application's summary line is no training text
        assert conn.execute(select(review_labels).where(review_labels.c.item_id == item.id)).first() is None


def test_a_queue_decision_on_an_application_waits_for_the_undo_window(env, vault, users) -> None:
    config = dataclasses.replace(env.service.config, queue=ReviewPolicy(undo_seconds=30))
    service = ReviewService(env.db, Queue(env.db, env.r, namespace=env.namespace, config=config), config)
    sig = _apply(env, vault)
    [item] = _items(env, sig["id"])
    service.claim(users["rev1"], item.id)
    service.decide(users["rev1"], item.id, version=item.version, action="approve")
    assert filing.get(env.db, None, sig["id"])["status"] == "pending"  # not released yet
    service.undo(users["rev1"], [item.id])
    service.release_due(at=datetime.now(UTC) + timedelta(seconds=31))
    assert filing.get(env.db, None, sig["id"])["status"] == "pending"
    service.decide(users["rev1"], item.id, version=item.version + 2, action="approve")
    service.release_due(at=datetime.now(UTC) + timedelta(seconds=31))
    assert filing.get(env.db, None, sig["id"])["status"] == "approved"
