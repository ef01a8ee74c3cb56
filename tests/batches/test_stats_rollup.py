"""The chart's rollup (``recipient_rollup``, kept by triggers on ``recipients``) equals counting the recipients
themselves, on both backends, after every kind of change a recipient goes through: created by a submit, duplicates
marked invalid, opted out and handed over by the release, delivered / failed / expired by reports, a batch cancelled
and one deleted; and the cost is the per-recipient share of the content, not the content's whole cost per recipient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from smsguard import batches
from smsguard.batches import ReleaseWorker
from smsguard.batches._stats import daily_states_scan, failure_codes_scan
from smsguard.batches._tables import batches as batches_t
from smsguard.batches._tables import recipient_rollup, recipients

SIG = "示例商城"


def _release(ctx) -> None:
    ReleaseWorker(ctx, chunk=3, poll=0.01).run(until_idle=True)


def _same(ctx, tenant: int, since: datetime) -> list:
    got = sorted(batches.daily_states(ctx, tenant, since=since))
    assert got == sorted(daily_states_scan(ctx, tenant, since=since))
    assert batches.failure_codes(ctx, tenant, since=since) == failure_codes_scan(ctx, tenant, since=since)
    return got


def test_rollup_equals_the_recipients_through_every_change(ctx, tenant: int) -> None:
    from smsguard.sending import DeliveryReport

    since = datetime.now(UTC) - timedelta(days=1)
    numbers = [f"1381234{i:04d}" for i in range(8)]
    a = batches.create_batch(ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=[*numbers, numbers[0]])
    assert _same(ctx, tenant, since)  # submitted: queued recipients and one duplicate, not yet released
    batches.opt_out(ctx, phone=batches.parse_phone(numbers[1]), tenant_id=tenant, actor="test")
    _release(ctx)
    rows = _same(ctx, tenant, since)
    states = {s: n for _, s, n, _ in rows}
    assert states == {"submitted": 7, "opted_out": 1, "invalid": 1}
    mid = batches.message_id
    for seq, status, code in (
        (3, "delivered", "DELIVRD"),
        (4, "failed", "MK:0001"),
        (5, "failed", "MK:0001"),
        (6, "expired", "EXPIRED"),
        (7, "failed", "ID:0012"),
    ):
        assert batches.apply_report(
            ctx, DeliveryReport(mid(a["id"], seq), f"+86{numbers[seq - 1]}", status, code, "cmpp-a", (f"g{seq}",))
        )
    rows = _same(ctx, tenant, since)
    assert batches.failure_codes(ctx, tenant, since=since)[0] == {
        "carrier": "mobile",
        "state": "failed",
        "code": "MK:0001",
        "n": 2,
    }
    # the cost: 7 recipients handed over, each its share of the content's cost (the whole content once)
    with ctx.db.connect() as conn:
        from smsguard.batches._tables import batch_contents

        content_cost, content_n = conn.execute(
            select(batch_contents.c.cost_micros, batch_contents.c.recipients).where(
                batch_contents.c.batch_id == a["id"]
            )
        ).one()
    assert sum(c for _, _, _, c in rows) == 7 * (content_cost // content_n)

    b = batches.create_batch(
        ctx,
        tenant,
        content=f"【{SIG}】取件提醒。",
        numbers=numbers[:3],
        schedule_at=datetime.now(UTC) + timedelta(days=2),
    )
    assert {s for _, s, _, _ in _same(ctx, tenant, since)} >= {"scheduled"}
    batches.cancel_batch(ctx, tenant, b["id"], actor="test")
    assert "cancelled" in {s for _, s, _, _ in _same(ctx, tenant, since)}

    # a deleted batch is counted out (its recipients cascade or are deleted with it)
    with ctx.db.begin() as conn:
        conn.execute(delete(recipients).where(recipients.c.batch_id == b["id"]))
        conn.execute(delete(batches_t).where(batches_t.c.id == b["id"]))
    _same(ctx, tenant, since)
    with ctx.db.connect() as conn:
        left = conn.execute(
            select(func.coalesce(func.sum(recipient_rollup.c.n), 0)).where(recipient_rollup.c.batch_id == b["id"])
        ).scalar_one()
        raw = conn.execute(
            select(
                recipient_rollup.c.status, recipient_rollup.c.carrier, recipient_rollup.c.code, recipient_rollup.c.n
            ).where(recipient_rollup.c.batch_id == a["id"], recipient_rollup.c.n != 0)
        ).all()
        direct = conn.execute(select(func.count()).where(recipients.c.batch_id == a["id"])).scalar_one()
    assert left == 0
    assert sum(n for *_, n in raw) == direct == 9
