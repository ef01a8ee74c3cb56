"""Issue 19's batch defects, on both backends: a marketing batch held by quiet hours says so and can be
cancelled before hand-over (its recipients cancelled, its reservation refunded); a reviewer's rejection
reaches the batch the customer reads; invalid numbers say why in our own words, with a code."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from sqlalchemy import text, update

from smsguard import batches
from smsguard.batches import ReleaseWorker
from smsguard.batches._tables import batches as batch_table
from smsguard.core import ConflictError
from smsguard.review import Decision
from smsguard.review._items import decision_handler

SIG = "示例商城"


def _night(ctx):
    """ctx with quiet hours from an hour ago to an hour from now (Asia/Shanghai)."""
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    q = msgspec.structs.replace
    quiet = q(ctx.policy.batches.quiet_hours, start=(local - timedelta(hours=1)).strftime("%H:%M"),
              end=(local + timedelta(hours=1)).strftime("%H:%M"), kinds=["marketing"])
    sections = dataclasses.replace(ctx.policy, batches=q(ctx.policy.batches, quiet_hours=quiet))
    return dataclasses.replace(ctx, policy_override=sections)


def _release(ctx, clock) -> None:
    ReleaseWorker(ctx, chunk=50, poll=0.01, clock=clock).run(until_idle=True)


def _outbox_of(ctx, batch_id: int) -> list[bytes]:
    return [f[b"id"] for _, f in ctx.redis.xrange(f"{ctx.send_namespace}:outbox")
            if f[b"id"].decode().startswith(f"{batch_id}-")]


def test_quiet_hours_batch_says_deferred_and_is_cancelled_before_hand_over(ctx, tenant: int) -> None:
    night = _night(ctx)
    batches.set_budget(night, tenant, 10.0)
    t0 = datetime.now(UTC)
    b = batches.create_batch(night, tenant, content=f"【{SIG}】新品上市，全场8折，回T退订",
                             numbers=["13812345678", "13912345678"], kind="marketing")
    # scheduled, but it will wait: the batch says until when, and that it may still be cancelled
    assert b["state"] == "scheduled" and b["hold"]["reason"] == "quiet_hours" and b["cancellable"]
    until = datetime.fromisoformat(b["hold"]["until"])
    assert timedelta(minutes=55) < until - t0 < timedelta(minutes=65)
    _release(night, lambda: t0 + timedelta(seconds=1))
    held = batches.get_batch(night, tenant, b["id"])
    assert held["state"] == "releasing" and held["counts"] == {"deferred": 2}
    assert held["hold"] == {"reason": "quiet_hours", "until": held["resume_at"]} and held["cancellable"]
    assert batches.get_budget(night, tenant)["spent"] == b["estimate"]  # reserved at release

    cancelled = batches.cancel_batch(night, tenant, b["id"], actor="test:alice")
    assert cancelled["state"] == "cancelled" and cancelled["counts"] == {"cancelled": 2}
    assert not cancelled["cancellable"] and cancelled["hold"] is None
    assert batches.get_budget(night, tenant)["spent"] == "0.0000"  # nothing was handed over: all refunded
    with ctx.db.connect() as conn:
        events = conn.execute(text("SELECT event_type FROM audit_events WHERE subject = :s"),
                              {"s": f"batch:{b['id']}"}).scalars().all()
    assert "batch.cancelled" in events
    # when the quiet hours end, nothing of it is handed over
    _release(night, lambda: until + timedelta(seconds=5))
    assert _outbox_of(ctx, b["id"]) == []
    assert batches.get_batch(night, tenant, b["id"])["counts"] == {"cancelled": 2}


def test_a_batch_being_handed_over_is_not_cancelled_under_the_worker(ctx, tenant: int) -> None:
    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=["13812345678"])
    with ctx.db.begin() as conn:  # a worker holds it right now (mid-chunk)
        conn.execute(update(batch_table).where(batch_table.c.id == b["id"]).values(
            state="releasing", lease_owner="release-x", lease_until=datetime.now(UTC) + timedelta(seconds=30)))
    assert not batches.get_batch(ctx, tenant, b["id"])["cancellable"]
    with pytest.raises(ConflictError) as e:
        batches.cancel_batch(ctx, tenant, b["id"])
    assert e.value.code == "batch.handing_over" and "handed over" in e.value.message
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"queued": 1}


def test_reviewer_rejection_reason_reaches_the_batch(ctx, tenant: int) -> None:
    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】低息贷款，详询门店。", numbers=["13812345678"])
    assert b["state"] == "review" and b["review"] == [{"content_id": 1, "decision": "pending", "reason": None,
                                                       "category": None}]
    handler = decision_handler("batch_content")
    with ctx.db.begin() as conn:
        handler(conn, Decision(item_id=0, source="batch_content",
                               source_ref=f"{b['id']}:{b['contents'][0]['content_hash']}", tenant_id=tenant,
                               approved=False, reason="未报备的贷款广告", deciders=["rita"], category="loan"))
    after = batches.get_batch(ctx, tenant, b["id"])
    assert after["state"] == "cancelled"
    assert "未报备的贷款广告" in after["reason"]
    assert after["review"] == [{"content_id": 1, "decision": "rejected", "reason": "未报备的贷款广告",
                                "category": "loan"}]


@pytest.mark.parametrize(("raw", "code"), [("1", "phone.not_a_number"), ("+999 12", "phone.country"),
                                           ("+86 1", "phone.too_short"), ("1381234", "phone.length")])
def test_invalid_numbers_say_why_in_our_words(raw: str, code: str) -> None:
    with pytest.raises(batches.InvalidPhone) as e:
        batches.parse_phone(raw)
    assert e.value.code == code
    # phonenumbers' own wording ("The string supplied did not seem to be a phone number") never leaks
    assert not any(w in e.value.message for w in ("string supplied", "seem", "interpret", "not a valid"))


def test_rejected_lines_are_shown_in_full_to_their_own_tenant_only(ctx, tenant: int, unique_name) -> None:
    import io

    from smsguard.core import NotFoundError
    from smsguard.storage import create_tenant

    data = io.BytesIO("手机号,姓名\n1381234,李娜\n13812345678,张伟\n13812345678,张伟\n021-61234567,赵磊\n".encode())
    lst = batches.import_contacts(ctx, tenant, "l", data)
    masked = {r["value"] for r in lst["rejected"]}  # masked by default (the API's list summary, logs)
    assert "138****5678" in masked and not masked & {"1381234", "13812345678", "021-61234567"}
    full = batches.get_list(ctx, tenant, lst["id"], full=True)["rejected"]
    assert [(r["line"], r["value"]) for r in full] == [(2, "1381234"), (4, "13812345678"), (5, "021-61234567")]
    report = "".join(batches.rejects_csv(ctx, tenant, lst["id"], full=True))
    assert "1381234" in report and "021-61234567" in report and "13812345678" in report
    assert "13812345678" not in "".join(batches.rejects_csv(ctx, tenant, lst["id"]))
    # stored encrypted: no column but the ciphertext holds the number; the audit event has counts only
    with ctx.db.connect() as conn:
        rows = conn.execute(text("SELECT line, kind, code, reason, value FROM contact_rejects WHERE list_id = :l"),
                            {"l": lst["id"]}).all()
        events = conn.execute(text("SELECT payload FROM audit_events WHERE subject = :s"),
                              {"s": f"contact_list:{lst['id']}"}).scalars().all()
    assert "13812345678" not in repr(rows) and "61234567" not in repr(rows)
    assert events and not any("1381234" in str(e) for e in events)
    other = create_tenant(ctx.db, unique_name("bt")).id
    with pytest.raises(NotFoundError):
        batches.get_list(ctx, other, lst["id"], full=True)


def test_a_failed_upload_can_be_deleted(ctx, tenant: int) -> None:
    import io

    from smsguard.core import NotFoundError

    with pytest.raises(batches.BatchError):
        batches.import_contacts(ctx, tenant, "broken", io.BytesIO(b"name,city\nzhang,shanghai\n"))
    with ctx.db.connect() as conn:
        failed = conn.execute(text("SELECT id FROM contact_lists WHERE tenant_id = :t AND status = 'failed'"),
                              {"t": tenant}).scalar_one()
    batches.delete_list(ctx, tenant, failed, actor="test:alice")
    with pytest.raises(NotFoundError):
        batches.get_list(ctx, tenant, failed)
    with ctx.db.connect() as conn:
        events = conn.execute(text("SELECT event_type FROM audit_events WHERE subject = :s"),
                              {"s": f"contact_list:{failed}"}).scalars().all()
    assert "contacts.deleted" in events
    # a list a batch went to is kept with the batch's records
    lst = batches.import_contacts(ctx, tenant, "ok", io.BytesIO("phone,name\n13812345678,张伟\n".encode()))
    tpl = batches.create_template(ctx, tenant, name="t", kind="notification", signature=SIG,
                                  body="${name}您好，已发货。")
    batches.create_batch(ctx, tenant, template_id=tpl["id"], list_id=lst["id"])
    with pytest.raises(ConflictError):
        batches.delete_list(ctx, tenant, lst["id"])
