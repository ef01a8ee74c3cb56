"""The reviewer workbench on both backends: validated filters, text search over the folded text, service-level
ordering and counts, canned reasons and policy categories, and leases given back at logout."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from smsguard.audit._tables import events as audit_events
from smsguard.core import PROJECT_ROOT, SmsguardError
from smsguard.review._service import Filters, ReviewError, now
from smsguard.review._tables import review_actions, review_items
from smsguard.runtime import PolicyDocument

POLICY = PolicyDocument.load(PROJECT_ROOT / "policy.yaml")
CATEGORIES = tuple(sorted(POLICY.screening.categories))


@pytest.fixture
def wb(make_env):
    return make_env(policy=POLICY)


def age(env, item_id: int, minutes: float) -> None:
    with env.db.begin() as conn:
        conn.execute(update(review_items).where(review_items.c.id == item_id)
                     .values(created_at=now() - timedelta(minutes=minutes)))


@pytest.mark.parametrize(("query", "where"), [
    ({"status": "approved"}, "query status"),
    ({"priority": "abc"}, "query priority"),
    ({"priority": "-1"}, "query priority"),
    ({"age": "1e3"}, "query age"),
    ({"severity": "critical"}, "query severity"),
    ({"source": "ftp"}, "query source"),
    ({"category": "完全乱写的类别"}, "query category"),
    ({"q": "长" * 101}, "query q"),
])
def test_a_filter_the_page_could_not_have_sent_is_an_error_naming_it(query, where) -> None:
    with pytest.raises(ReviewError) as e:
        Filters.from_query(query, categories=CATEGORIES)
    assert e.value.where == where and e.value.code == "review.filter"


def test_good_filters_round_trip_through_the_url() -> None:
    q = {"tenant": "acme", "category": "loan", "severity": "high", "source": "api", "q": "贷款", "age": "5",
         "priority": "1", "status": "pending"}
    f = Filters.from_query(q, categories=CATEGORIES)
    assert Filters.from_query(f.query(), categories=CATEGORIES) == f
    assert f.query() == q


def test_search_finds_the_original_text_and_its_folded_spelling(wb) -> None:
    spaced = wb.submit("【测试】澳门百 家 樂，贷款秒批")
    plain = wb.submit("【测试】百家乐贷款 100%_下款")
    other = wb.submit("【测试】普通贷款消息")
    found = {r["id"] for r in wb.service.queue_view(Filters(search="百家乐")).rows}
    assert found == {spaced, plain}
    # the search is folded too: any spelling of the term finds every spelling of it
    assert {r["id"] for r in wb.service.queue_view(Filters(search="百 家 樂")).rows} == {spaced, plain}
    # LIKE wildcards in the search are literal characters
    assert {r["id"] for r in wb.service.queue_view(Filters(search="100%_")).rows} == {plain}
    assert other not in found


def test_past_and_near_target_items_lead_and_severity_counts_in_the_order(wb, users) -> None:
    # targets: high 15 min, medium 60, low 240; near = 80 % of the target
    low_old = wb.submit(severity="low")        # 200 min: near (>= 192), due in 40
    low_late = wb.submit(severity="low")       # 250 min: past its target
    medium_new = wb.submit(severity="medium")  # 10 min: due in 50
    high_new = wb.submit(severity="high")      # 1 min: due in 14
    low_new = wb.submit(severity="low")        # 30 min: due in 210
    for item, minutes in ((low_old, 200), (low_late, 250), (medium_new, 10), (high_new, 1), (low_new, 30)):
        age(wb, item, minutes)
    view = wb.service.queue_view(Filters())
    assert [r["id"] for r in view.rows] == [low_late, high_new, low_old, medium_new, low_new]
    states = {r["id"]: r["sla_state"] for r in view.rows}
    assert states[low_late] == "breached" and states[low_old] == "near" and states[high_new] == "ok"
    assert (view.breached, view.near) == (1, 1)
    assert view.severity_counts == {"high": 1, "medium": 1, "low": 3}
    # the claim follows the same order, and an operator's priority still comes first
    prio = wb.submit(severity="low", priority=2)
    assert wb.service.claim_next(users["rev1"]) == prio
    assert wb.service.claim_next(users["rev2"]) == low_late
    assert wb.service.claim_next(users["sen1"]) == high_new


def test_a_canned_reason_reaches_the_item_the_action_and_the_audit_payload(wb, users) -> None:
    item = wb.submit(category="contact")
    offered = [r.code for r in wb.service.config.reasons_for("contact")]
    assert offered[0] == "private_contact" and "gambling" not in offered
    version = wb.service._row(item).version
    wb.service.decide(users["rev1"], item, version=version, action="reject", reason_code="private_contact",
                      reason="加微信号引流")
    row = wb.service._row(item)
    assert row.decision_reason == "引流私人联系方式：加微信号引流"
    assert row.decision_reason_code == "private_contact"
    with wb.db.connect() as conn:
        action = conn.execute(select(review_actions).where(review_actions.c.item_id == item)).one()
        payload = conn.execute(select(audit_events.c.payload).where(audit_events.c.subject == f"review:{item}")
                               .order_by(audit_events.c.id.desc())).scalars().first()
    assert action.reason_code == "private_contact"
    assert json.loads(payload)["reason_code"] == "private_contact"


def test_a_canned_reason_alone_is_enough_to_reject(wb, users) -> None:
    item = wb.submit()
    wb.service.decide(users["rev1"], item, version=wb.service._row(item).version, action="reject",
                      reason_code="illegal_loan")
    assert wb.service._row(item).decision_reason == "违规贷款营销"


@pytest.mark.parametrize(("kwargs", "where"), [
    ({"action": "reject", "reason_code": "made_up"}, "reason_code"),
    ({"action": "approve", "category": "完全乱写的类别"}, "category"),
    ({"action": "reject"}, "reason"),
])
def test_a_decision_outside_the_policy_is_refused(wb, users, kwargs, where) -> None:
    item = wb.submit()
    with pytest.raises(ReviewError) as e:
        wb.service.decide(users["rev1"], item, version=wb.service._row(item).version, **kwargs)
    assert e.value.where == where
    assert wb.service._row(item).status == "pending"


def test_an_escalation_carries_its_note_to_the_senior(wb, users) -> None:
    item = wb.submit()
    wb.service.decide(users["rev1"], item, version=wb.service._row(item).version, action="escalate",
                      reason="疑似冒充银行，请资深审核")
    view = wb.service.item_view(users["sen1"], item)
    assert view.item["status"] == "escalated"
    assert [a["reason"] for a in view.actions if a["action"] == "escalate"] == ["疑似冒充银行，请资深审核"]


def test_release_all_gives_back_every_item_a_reviewer_holds(wb, users) -> None:
    items = [wb.submit() for _ in range(3)]
    assert all(wb.service.claim(users["rev1"], item)[0] for item in items)
    assert wb.service.claim_next(users["rev2"]) is None
    assert wb.service.release_all(users["rev1"]) == 3
    assert wb.service.claim_next(users["rev2"]) in items
    assert wb.service.release_all(users["rev2"]) == 1
    wb.flush_redis()
    assert wb.service.release_all(users["rev1"]) == 0  # nothing held (and no group) after Redis lost its data


def test_items_stored_before_the_migration_are_searchable(wb) -> None:
    item = wb.submit("【测试】旧数据 百 家 樂")
    with wb.db.begin() as conn:
        conn.execute(update(review_items).where(review_items.c.id == item).values(search_text=None))
    # the original text still matches; the folded view is filled by the migration for old rows
    assert {r["id"] for r in wb.service.queue_view(Filters(search="旧数据")).rows} == {item}
    assert json.loads(wb.service._row(item).sample_recipients) == ["138****5678"]


def test_a_bulk_decision_keeps_each_items_rules(wb, users) -> None:
    plain = [wb.submit() for _ in range(3)]
    four_eyes = wb.submit(severity="high")
    held = wb.submit()
    assert wb.service.claim(users["rev2"], held)[0]  # somebody else is on it
    outcome = wb.service.bulk_decide(users["rev1"], [*plain, four_eyes, held], action="approve")
    assert (outcome.bulk_done, outcome.bulk_skipped) == (4, 1)
    assert [wb.service._row(i).status for i in plain] == ["approved"] * 3
    assert wb.service._row(four_eyes).status == "second"  # a first approval only: a senior must give the second
    assert wb.service._row(held).status == "pending"
    with pytest.raises(SmsguardError) as e:
        wb.service.bulk_decide(users["rev1"], [held], action="reject")
    assert e.value.where == "reason"
    with pytest.raises(SmsguardError):
        wb.service.bulk_decide(users["rev1"], [], action="approve")
    with pytest.raises(ReviewError) as e:
        wb.service.bulk_decide(users["rev1"], list(range(1, 300)), action="approve")
    assert "at most" in e.value.message


def test_history_lists_my_decisions_newest_first_and_searches(wb, users) -> None:
    a = wb.submit("【测试】历史记录甲 贷款")
    b = wb.submit("【测试】历史记录乙 贷款")
    wb.service.decide(users["rev1"], a, version=wb.service._row(a).version, action="approve")
    wb.service.decide(users["rev2"], b, version=wb.service._row(b).version, action="reject",
                      reason_code="illegal_loan")
    mine = [r["id"] for r in wb.service.history(users["rev1"], Filters(), mine=True)]
    assert a in mine and b not in mine
    found = wb.service.history(users["rev1"], Filters(search="历史记录乙"))
    assert [r["id"] for r in found] == [b]
    assert found[0]["decision_reason"] == "违规贷款营销" and found[0]["deciders"] == [users["rev2"].username]


def test_a_senior_can_free_an_item_another_reviewer_holds(wb, users) -> None:
    item = wb.submit()
    assert wb.service.claim(users["rev1"], item)[0]
    with pytest.raises(SmsguardError):
        wb.service.force_release(users["rev2"], item)
    assert wb.service.force_release(users["sen1"], item)
    assert wb.service.claim(users["rev2"], item)[0]
    assert not wb.service.force_release(users["sen1"], wb.submit())  # nobody held it
