"""Truthful batch states on both backends: ``sending`` (waiting for a channel / for receipts) until every
recipient is final, then ``done``; ``unknown`` counted and exported; the reconciliation view."""

from __future__ import annotations

import time

from sqlalchemy import text

from smsguard import batches
from smsguard.batches import ReleaseWorker, apply_report, message_id
from smsguard.batches._settle import reconciliation, settle_batches
from smsguard.sending import DeliveryReport

SIG = "示例商城"
NUMBERS = ["13812340001", "13812340002", "13812340003", "13812340004"]


def _sent_batch(ctx, tenant: int, numbers: list[str] = NUMBERS) -> dict:
    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】您的订单已发货。", numbers=numbers, kind="notification",
                             signature=SIG)
    ReleaseWorker(ctx, poll=0.01).run(until_idle=True)
    return b


def _report(ctx, batch_id: int, seq: int, status: str, code: str) -> None:
    assert apply_report(ctx, DeliveryReport(message_id(batch_id, seq), "", status, code, "cm", ("g1",)))  # type: ignore[arg-type]


def test_released_is_sending_and_waits_for_a_channel_until_every_recipient_is_final(ctx, tenant: int) -> None:
    b = _sent_batch(ctx, tenant)
    view = batches.get_batch(ctx, tenant, b["id"])
    assert view["state"] == "sending" and view["done_at"] is None
    assert view["waiting_for"] == "channel"  # nothing consumes the outbox in this test
    # a gateway heartbeat: now it waits for receipts
    ctx.redis.zadd(f"{ctx.send_namespace}:gateways", {"test-gw": time.time()})
    try:
        assert batches.get_batch(ctx, tenant, b["id"])["waiting_for"] == "receipts"
    finally:
        ctx.redis.zrem(f"{ctx.send_namespace}:gateways", "test-gw")

    _report(ctx, b["id"], 1, "delivered", "DELIVRD")
    _report(ctx, b["id"], 2, "failed", "UNDELIV")
    _report(ctx, b["id"], 3, "unknown", "no_receipt")  # its channel's receipt deadline passed
    assert b["id"] not in settle_batches(ctx)  # one still submitted
    rec = reconciliation(ctx, tenant_id=tenant)
    assert rec["total"] == 1 and [i["seq"] for i in rec["items"]] == [4]
    assert rec["items"][0]["send_state"] == "queued" and rec["items"][0]["age_seconds"] >= 0
    assert reconciliation(ctx, tenant_id=tenant, older_than=3600)["items"] == []

    _report(ctx, b["id"], 4, "delivered", "DELIVRD")
    assert b["id"] in settle_batches(ctx)
    assert settle_batches(ctx) == []  # once
    done = batches.get_batch(ctx, tenant, b["id"])
    assert done["state"] == "done" and done["done_at"] and done["waiting_for"] is None
    assert done["counts"] == {"delivered": 2, "failed": 1, "unknown": 1}
    report = "".join(batches.report_csv(ctx, tenant, b["id"])).splitlines()
    assert report[3].split(",")[3:5] == ["unknown", "unknown: no_receipt"]
    with ctx.db.connect() as conn:
        events = conn.execute(
            text("SELECT event_type FROM audit_events WHERE subject = :s ORDER BY id"), {"s": f"batch:{b['id']}"}
        ).scalars().all()
    assert events[-2:] == ["batch.sending", "batch.done"]
    assert reconciliation(ctx, tenant_id=tenant)["total"] == 0


def test_a_batch_with_nothing_handed_over_is_done_at_release(ctx, tenant: int) -> None:
    batches.opt_out(ctx, phone=batches.parse_phone("13812349999"), tenant_id=tenant, signature=SIG, actor="test")
    b = _sent_batch(ctx, tenant, ["13812349999"])
    view = batches.get_batch(ctx, tenant, b["id"])
    assert view["state"] == "done" and view["counts"] == {"opted_out": 1} and view["waiting_for"] is None
