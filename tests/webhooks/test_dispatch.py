"""The real dispatcher against a real receiver process, on SQLite and PostgreSQL: signatures verify, failures
(500, hang, connection closed, slow) are retried with the same event id until delivered, order holds per
subject, the backoff schedule is followed, the retry window dead-letters, re-sends deliver again, a slow
tenant does not hold up another, and several dispatchers share the work without losing any."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select
from webhook_support import dispatchers, wait_for

from smsguard import webhooks
from smsguard.webhooks import RetryPolicy

FAST = RetryPolicy(base=0.05, max_delay=0.2, window=600)


def audit_kinds(db, tenant: int) -> list[str]:
    from smsguard.audit._tables import events as audit_events

    with db.connect() as conn:
        return [t for (t,) in conn.execute(select(audit_events.c.event_type).where(audit_events.c.tenant_id == tenant)
                                           .order_by(audit_events.c.id))]


def _endpoint(db, tenant: int, url: str, **kw) -> dict:
    kw.setdefault("events", ["*"])
    return webhooks.create_endpoint(db, tenant, url=url, actor="test", **kw)


def _statuses(db, endpoint_id: int) -> Counter:
    from smsguard.webhooks._tables import deliveries

    with db.connect() as conn:
        return Counter(s for (s,) in conn.execute(select(deliveries.c.status)
                                                  .where(deliveries.c.endpoint_id == endpoint_id)))


def _all_final(db, endpoint_id: int, n: int) -> bool:
    c = _statuses(db, endpoint_id)
    return sum(c.values()) == n and c["pending"] == 0


def test_a_delivery_is_signed_and_verifies(migrated_db, tenant, receiver, emit) -> None:
    ep = _endpoint(migrated_db, tenant, receiver.url(f"/sig-{tenant}"))
    event_id = emit(tenant, "message.delivered", "message:1-1", {"message_id": "1-1", "phone": "138****1234"})
    with dispatchers(migrated_db, retry=FAST):
        [got] = wait_for(lambda: receiver.log(f"/sig-{tenant}"), what="the delivery")
    h, body = got["headers"], got["body"].encode()
    assert h["x-smsguard-event-id"] == event_id and h["x-smsguard-event-type"] == "message.delivered"
    assert h["x-smsguard-attempt"] == "1"
    sent = json.loads(body)
    assert (sent["id"], sent["type"], sent["subject"]) == (event_id, "message.delivered", "message:1-1")
    assert sent["data"] == {"message_id": "1-1", "phone": "138****1234"}
    header = h["x-smsguard-signature"]
    assert webhooks.verify(header, body, ep["secret"])
    assert not webhooks.verify(header, body, "whsec_wrong")
    assert not webhooks.verify(header, body + b" ", ep["secret"])
    ts = int(header.split(",")[0][2:])
    assert not webhooks.verify(header, body, ep["secret"], now=ts + webhooks.REPLAY_WINDOW + 1)  # replayed later
    [d] = webhooks.list_deliveries(migrated_db, tenant, ep["id"])["deliveries"]
    assert d["status"] == "delivered" and d["attempts"] == 1 and d["last_status_code"] == 200
    assert d["attempt_log"][0]["status_code"] == 200 and d["attempt_log"][0]["latency_ms"] > 0


def test_an_event_rolled_back_with_its_change_is_never_sent(migrated_db, tenant, receiver) -> None:
    _endpoint(migrated_db, tenant, receiver.url(f"/rb-{tenant}"))
    with pytest.raises(RuntimeError), migrated_db.begin() as conn:
        webhooks.emit(conn, tenant_id=tenant, event_type="mo.received", subject="phone:x", payload={})
        raise RuntimeError("the change fails")
    from smsguard.webhooks._tables import events

    with migrated_db.connect() as conn:
        assert conn.execute(select(events.c.seq).where(events.c.tenant_id == tenant)).all() == []


def test_failures_are_retried_with_the_same_event_id_and_nothing_is_lost(migrated_db, tenant, receiver, emit) -> None:
    """500, a hang past the timeout, a closed connection, a slow answer: two dispatchers, 30 events, each
    delivered; every copy of an event carries its id and the same body."""
    path = f"/flaky-{tenant}"
    ep = _endpoint(migrated_db, tenant, receiver.url(path), timeout=1.0, max_concurrency=4)
    receiver.script(path, ["500", "hang", "close", "slow:0.3", "500", "close", "hang", "503", "slow:0.2"] * 2)
    ids = [emit(tenant, "message.failed", f"message:9-{i}", {"i": i}) for i in range(30)]
    with dispatchers(migrated_db, 2, retry=FAST):
        wait_for(lambda: _all_final(migrated_db, ep["id"], 30), what="every delivery final")
    assert _statuses(migrated_db, ep["id"]) == Counter(delivered=30)
    log = receiver.log(path)
    by_id: dict[str, list[dict]] = defaultdict(list)
    for r in log:
        by_id[r["headers"]["x-smsguard-event-id"]].append(r)
    assert set(by_id) == set(ids)  # nothing lost, nothing foreign
    assert all(any(r["action"] in ("200", "slow:0.3", "slow:0.2") for r in rs) for rs in by_id.values())
    repeated = [rs for rs in by_id.values() if len(rs) > 1]
    assert len(repeated) >= 8  # the failures were delivered again …
    for rs in repeated:  # … as the same event
        assert len({r["body"] for r in rs}) == 1
        assert [int(r["headers"]["x-smsguard-attempt"]) for r in rs] == list(range(1, len(rs) + 1))
    errors = Counter()
    for d in webhooks.list_deliveries(migrated_db, tenant, ep["id"], limit=500)["deliveries"]:
        assert d["attempts"] == len(d["attempt_log"]) == len(by_id[d["event_id"]])
        for a in d["attempt_log"]:
            errors[(a["status_code"], (a["error"] or "").split(":")[0].split(" after")[0])] += 1
    assert errors[(500, "HTTP 500")] == 4 and errors[(503, "HTTP 503")] == 2
    assert errors[(None, "timeout")] == 4  # the hangs
    assert errors[(None, "RemoteProtocolError")] == 4  # closed without an answer


def test_order_holds_per_subject(migrated_db, tenant, receiver, emit) -> None:
    """Three subjects, five events each, interleaved; the first answers fail: a later event of a subject is
    never received before the earlier one was answered 2xx."""
    path = f"/order-{tenant}"
    ep = _endpoint(migrated_db, tenant, receiver.url(path), timeout=1.0, max_concurrency=8)
    receiver.script(path, ["500", "close", "500", "hang", "500"])
    order = {s: [emit(tenant, "message.delivered", s, {"n": n}) for n in range(1)] for s in ("a", "b", "c")}
    for n in range(1, 5):
        for s in order:
            order[s].append(emit(tenant, "message.delivered", s, {"n": n}))
    with dispatchers(migrated_db, 2, retry=FAST):
        wait_for(lambda: _all_final(migrated_db, ep["id"], 15), what="every delivery final")
    for s, ids in order.items():
        seen = [(r["headers"]["x-smsguard-event-id"], r["action"]) for r in receiver.log(path)
                if json.loads(r["body"])["subject"] == s]
        firsts = list(dict.fromkeys(e for e, _ in seen))
        assert firsts == ids, f"subject {s} out of order"
        for e, later in itertools.pairwise(ids):  # the earlier one succeeded before the later arrived
            ok_at = max(i for i, (x, a) in enumerate(seen) if x == e and a == "200")
            assert ok_at < min(i for i, (x, _) in enumerate(seen) if x == later)


def test_backoff_schedule_then_dead_letter_then_resend(migrated_db, tenant, receiver, emit) -> None:
    path = f"/down-{tenant}"
    ep = _endpoint(migrated_db, tenant, receiver.url(path), timeout=1.0)
    receiver.script(path, [], default="500")
    policy = RetryPolicy(base=0.1, max_delay=0.4, window=1.5)
    event_id = emit(tenant, "budget.low", f"budget:{tenant}", {"remaining": "1.0000"})
    with dispatchers(migrated_db, retry=policy, jitter=lambda: 1.0):
        wait_for(lambda: _statuses(migrated_db, ep["id"])["dead"] == 1, what="the dead letter")
    [d] = webhooks.list_dead_letters(migrated_db, tenant)["deliveries"]
    assert d["event_id"] == event_id and d["status"] == "dead" and d["last_status_code"] == 500
    times = [r["at"] for r in receiver.log(path)]
    assert len(times) == d["attempts"] >= 4
    for n, (a, b) in enumerate(itertools.pairwise(times), start=1):
        assert b - a >= policy.delay(n, 1.0) - 0.01, f"attempt {n + 1} came before its backoff"
    assert times[-1] - times[0] <= policy.window  # no attempt after the window
    assert "webhook.dead_lettered" in audit_kinds(migrated_db, tenant)
    # the receiver recovers; a manual re-send delivers the same event again
    receiver.script(path, [], default="200")
    out = webhooks.resend_event(migrated_db, tenant, event_id, actor="test")
    assert [x["webhook_id"] for x in out["deliveries"]] == [ep["id"]]
    with dispatchers(migrated_db, retry=policy):
        wait_for(lambda: _statuses(migrated_db, ep["id"])["delivered"] == 1, what="the re-send")
    last = receiver.log(path)[-1]
    assert last["action"] == "200" and last["headers"]["x-smsguard-event-id"] == event_id


def test_rotation_signs_with_both_secrets_during_the_grace(migrated_db, tenant, receiver, emit) -> None:
    path = f"/rot-{tenant}"
    ep = _endpoint(migrated_db, tenant, receiver.url(path))
    rotated = webhooks.rotate_secret(migrated_db, tenant, ep["id"], grace=3600, actor="test")
    assert rotated["secret"] != ep["secret"] and rotated["previous_secret_valid_until"]
    emit(tenant, "review.decided", "review:1", {"decision": "approved"})
    with dispatchers(migrated_db, retry=FAST):
        [got] = wait_for(lambda: receiver.log(path), what="the delivery")
        header, body = got["headers"]["x-smsguard-signature"], got["body"].encode()
        assert header.count("v1=") == 2
        assert webhooks.verify(header, body, rotated["secret"]) and webhooks.verify(header, body, ep["secret"])
        webhooks.rotate_secret(migrated_db, tenant, ep["id"], grace=0, actor="test")  # the old one ends now
        emit(tenant, "review.decided", "review:2", {"decision": "rejected"})
        got = wait_for(lambda: receiver.log(path)[1:], what="the second delivery")[0]
    assert got["headers"]["x-smsguard-signature"].count("v1=") == 1
    assert not webhooks.verify(got["headers"]["x-smsguard-signature"], got["body"].encode(), rotated["secret"])


def test_a_hanging_tenant_does_not_hold_up_another(migrated_db, unique_name, receiver, emit) -> None:
    from smsguard.storage import create_tenant

    slow_t, fast_t = (create_tenant(migrated_db, unique_name(n)).id for n in ("slow", "fast"))
    slow = _endpoint(migrated_db, slow_t, receiver.url(f"/hang-{slow_t}"), timeout=5.0, max_concurrency=2)
    fast = _endpoint(migrated_db, fast_t, receiver.url(f"/ok-{fast_t}"), max_concurrency=2)
    receiver.script(f"/hang-{slow_t}", [], default="hang")
    for i in range(20):  # the slow tenant's events first: they are older, the claim must not favour them
        emit(slow_t, "message.delivered", f"message:s-{i}", {"i": i})
    for i in range(20):
        emit(fast_t, "message.delivered", f"message:f-{i}", {"i": i})
    with dispatchers(migrated_db, retry=FAST):
        wait_for(lambda: _statuses(migrated_db, fast["id"])["delivered"] == 20, what="the fast tenant")
        # every fast delivery is done while the slow tenant's first two requests are still hanging
        assert len(receiver.log(f"/hang-{slow_t}")) == 2
        assert _statuses(migrated_db, slow["id"]) == Counter(pending=20)


def test_no_endpoint_no_row_and_other_tenants_do_not_hear(migrated_db, tenant, unique_name, receiver, emit) -> None:
    from smsguard.storage import create_tenant
    from smsguard.webhooks._tables import events

    other = create_tenant(migrated_db, unique_name("other")).id
    _endpoint(migrated_db, other, receiver.url(f"/other-{other}"), events=["optout.added"])
    emit(tenant, "optout.added", "phone:1", {})  # tenant has no endpoint
    emit(other, "mo.received", "phone:1", {})  # other does not subscribe to this type
    with migrated_db.connect() as conn:
        assert conn.execute(select(events.c.seq).where(events.c.tenant_id.in_([tenant, other]))).all() == []


def test_deliveries_a_dead_dispatcher_had_claimed_are_sent_after_its_lease(migrated_db, tenant, receiver,
                                                                           emit) -> None:
    from smsguard.webhooks import Dispatcher

    path = f"/crash-{tenant}"
    ep = _endpoint(migrated_db, tenant, receiver.url(path))
    ids = [emit(tenant, "mo.received", f"phone:{i}", {"i": i}) for i in range(3)]
    crashed = Dispatcher(migrated_db, worker_id="crashed", lease=0.5)
    mine = [j for j in crashed.claim() if j.endpoint_id == ep["id"]]  # (earlier tests' leftovers are due too)
    assert len(mine) == 3  # claimed, then the process died: nothing sent, nothing recorded
    with dispatchers(migrated_db, retry=FAST):
        wait_for(lambda: _statuses(migrated_db, ep["id"])["delivered"] == 3, what="the lease to lapse")
    assert sorted(r["headers"]["x-smsguard-event-id"] for r in receiver.log(path)) == sorted(ids)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://172.16.0.9/hook",
    "http://192.168.1.1/hook", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/hook",
    "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://[fd00::1]/hook", "http://[fe80::1]/hook",
    "http://0.0.0.0/hook", "http://224.0.0.1/hook",
])
def test_non_public_addresses_are_blocked(url: str) -> None:
    import asyncio

    from smsguard.webhooks._dispatcher import blocked_address

    reason = asyncio.run(blocked_address(url))
    assert reason is not None and reason.startswith("blocked address"), reason


def test_public_addresses_pass() -> None:
    import asyncio

    from smsguard.webhooks._dispatcher import blocked_address

    assert asyncio.run(blocked_address("https://203.0.113.0.nip.invalid/x")).startswith("cannot resolve")
    assert asyncio.run(blocked_address("http://8.8.8.8/hook")) is None
    assert asyncio.run(blocked_address("https://[2001:4860:4860::8888]:8443/hook")) is None


def test_a_tenant_cannot_reach_the_platforms_own_network(migrated_db, tenant, receiver, emit) -> None:
    """Off by default (SMSGUARD_WEBHOOK_ALLOW_PRIVATE): a webhook pointing at 127.0.0.1 gets no request at all;
    each attempt is logged with the reason, retried, then dead-lettered like any failure."""
    from smsguard.webhooks._tables import attempts, deliveries

    path = f"/inward-{tenant}"
    ep = _endpoint(migrated_db, tenant, receiver.url(path))
    emit(tenant, "message.delivered", "message:7-1", {"i": 1})
    quick = RetryPolicy(base=0.05, max_delay=0.1, window=0.5)
    with dispatchers(migrated_db, retry=quick, allow_private=False):
        wait_for(lambda: _statuses(migrated_db, ep["id"])["dead"] == 1, what="the dead letter")
    assert receiver.log(path) == []  # not one request reached it
    with migrated_db.connect() as conn:
        errors = conn.execute(select(attempts.c.error).join(deliveries, deliveries.c.id == attempts.c.delivery_id)
                              .where(deliveries.c.endpoint_id == ep["id"])).scalars().all()
    assert errors and all(e.startswith("blocked address: 127.0.0.1 resolves to 127.0.0.1") for e in errors)
