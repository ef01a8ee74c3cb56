"""The screening API on both backends: keys and tenants, cache, audit, rate limits, errors, metrics, reload."""

from __future__ import annotations

import re
import time

import msgspec
import pytest
from litestar.testing import TestClient

SPAM = "【某平台】澳门赌场上线，注册就送"
HAM = "【示例商城】您的订单已发货，请注意查收。"


def _metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    m = re.search("^" + pattern + "$", text, re.M)
    return float(m.group(1)) if m else 0.0


def _wait_for_fresh_window(seconds: int = 60, margin: float = 3.0) -> None:
    """Rate windows are fixed: don't start counting just before one ends."""
    left = seconds - time.time() % seconds
    if left < margin:
        time.sleep(left + 0.05)


# -- keys and tenants ----------------------------------------------------------------------------
def test_screen_needs_a_valid_key(client: TestClient, make_tenant) -> None:
    r = client.post("/v1/screen", json={"text": HAM})
    assert r.status_code == 401 and r.json()["code"] == "auth.missing_key"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = client.post("/v1/screen", json={"text": HAM}, headers={"Authorization": "Bearer sg_" + "x" * 43})
    assert r.status_code == 401 and r.json()["code"] == "auth.invalid_key"
    r = client.post("/v1/screen", json={"text": HAM}, headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and r.json()["where"] == "header Authorization"
    t = make_tenant()
    assert client.post("/v1/screen", json={"text": HAM}, headers={"X-API-Key": t.key}).status_code == 200


def test_a_revoked_key_is_refused(client: TestClient, make_tenant, backend) -> None:
    from smsguard.storage import revoke_key

    t = make_tenant()
    assert client.post("/v1/screen", json={"text": HAM}, headers=t.headers).status_code == 200
    revoke_key(backend.db, t.key[:12])
    assert client.post("/v1/screen", json={"text": HAM}, headers=t.headers).status_code == 401


def test_screen_answers_a_verdict_and_stores_it_for_audit(client: TestClient, make_tenant) -> None:
    t = make_tenant()
    r = client.post("/v1/screen", json={"text": SPAM, "id": "m-1"}, headers=t.headers)
    assert r.status_code == 200
    v = r.json()
    assert v["id"] == "m-1" and v["decision"] == "block" and v["cached"] is False
    assert any(x["category"] == "gambling" and SPAM[x["start"] : x["end"]] == "赌场" for x in v["reasons"])
    assert set(v["versions"]) == {"policy", "lexicon", "model"}
    stored = client.get(f"/v1/verdicts/{v['verdict_id']}", headers=t.headers)
    assert stored.status_code == 200
    s = stored.json()
    assert s["text"] == SPAM and s["decision"] == "block" and s["verdict_id"] == v["verdict_id"]
    assert s["reasons"] == v["reasons"] and s["created_at"].endswith("+00:00")


def test_a_key_never_sees_another_tenants_data(client: TestClient, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    va = client.post("/v1/screen", json={"text": SPAM}, headers=a.headers).json()
    # b cannot read a's verdict: the same 404 as for an id that does not exist
    r = client.get(f"/v1/verdicts/{va['verdict_id']}", headers=b.headers)
    assert r.status_code == 404 and r.json()["code"] == "verdict.not_found"
    assert client.get("/v1/verdicts/" + "0" * 32, headers=b.headers).status_code == 404
    # b cannot learn from the cache that a screened this text: b's first screening is not "cached"
    vb = client.post("/v1/screen", json={"text": SPAM}, headers=b.headers).json()
    assert vb["cached"] is False
    # a body naming another tenant is refused, never used
    r = client.post("/v1/screen", json={"text": HAM, "tenant": a.name}, headers=b.headers)
    assert r.status_code == 403  # the body fits the schema; the key may not act for that tenant
    assert r.json() == {
        "code": "input.tenant_mismatch",
        "message": "tenant is set by the API key; leave it out or give the key's own tenant",
        "where": "$.tenant",
    }
    r = client.post("/v1/screen/batch", json={"messages": [{"text": HAM}, {"text": HAM, "tenant": a.name}]},
                    headers=b.headers)
    assert r.status_code == 403 and r.json()["where"] == "$.messages[1].tenant"
    # naming one's own tenant is fine
    assert client.post("/v1/screen", json={"text": HAM, "tenant": b.name}, headers=b.headers).status_code == 200


def test_tenant_policy_overrides_apply_by_key(client: TestClient, make_tenant, backend) -> None:
    # The tests' policy gives tenant "sigco" one registered signature (甲公司); the tenant comes from the key.
    from smsguard.storage import get_tenant

    try:
        get_tenant(backend.db, "sigco")
        sigco = None
    except Exception:
        sigco = make_tenant(name="sigco")
    if sigco is None:  # created by an earlier run of this test on this backend's session
        pytest.skip("tenant sigco exists already")
    other = make_tenant()
    text = "【乙公司】您的订单已发货，请注意查收。"
    for_sigco = client.post("/v1/screen", json={"text": text}, headers=sigco.headers).json()
    for_other = client.post("/v1/screen", json={"text": text}, headers=other.headers).json()
    assert "signature.unregistered" in {r["code"] for r in for_sigco["reasons"]}
    assert "signature.unregistered" not in {r["code"] for r in for_other["reasons"]}
    own = "【甲公司】您的订单已发货，请注意查收。"
    ok = client.post("/v1/screen", json={"text": own}, headers=sigco.headers).json()
    assert "signature.unregistered" not in {r["code"] for r in ok["reasons"]}


# -- cache ---------------------------------------------------------------------------------------
def test_identical_content_is_screened_once(client: TestClient, make_tenant) -> None:
    t = make_tenant()
    text = f"【示例商城】缓存测试 {time.time_ns()}，您的订单已发货。"
    misses = _metric(client, "smsguard_verdict_cache_total", result="miss")
    hits = _metric(client, "smsguard_verdict_cache_total", result="hit")
    first = client.post("/v1/screen", json={"text": text, "id": 1}, headers=t.headers).json()
    time.sleep(0.05)  # the cache write goes out right after the answer
    second = client.post("/v1/screen", json={"text": text, "id": 2}, headers=t.headers).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert (first["id"], second["id"]) == (1, 2)
    assert first["verdict_id"] != second["verdict_id"]
    strip = {"id", "verdict_id", "cached"}
    assert {k: v for k, v in first.items() if k not in strip} == {k: v for k, v in second.items() if k not in strip}
    assert _metric(client, "smsguard_verdict_cache_total", result="miss") == misses + 1
    assert _metric(client, "smsguard_verdict_cache_total", result="hit") == hits + 1
    # both answers are stored for audit, each under its own id
    for v in (first, second):
        assert client.get(f"/v1/verdicts/{v['verdict_id']}", headers=t.headers).json()["cached"] == v["cached"]
    # what decides the verdict is in the key: another kind or content_only is screened anew
    other = client.post("/v1/screen", json={"text": text, "kind": "marketing"}, headers=t.headers).json()
    assert other["cached"] is False
    assert client.post("/v1/screen?content_only=true", json={"text": text}, headers=t.headers).json()["cached"] is False


def test_batch_screens_repeats_once_and_keeps_order(client: TestClient, make_tenant) -> None:
    t = make_tenant()
    stamp = time.time_ns()
    texts = [f"【示例商城】批量{stamp}-{i % 3}，您的订单已发货。" for i in range(9)] + [SPAM]
    r = client.post("/v1/screen/batch", json={"messages": [{"text": x, "id": i} for i, x in enumerate(texts)]},
                    headers=t.headers)
    assert r.status_code == 200
    verdicts = r.json()["verdicts"]
    assert [v["id"] for v in verdicts] == list(range(10))
    assert [v["cached"] for v in verdicts[:3]] == [False, False, False]
    assert all(v["cached"] for v in verdicts[3:9])
    assert verdicts[9]["decision"] == "block"
    assert len({v["verdict_id"] for v in verdicts}) == 10


def test_batch_limits(client: TestClient, make_tenant) -> None:
    t = make_tenant(rate_limit=100_000)
    r = client.post("/v1/screen/batch", json={"messages": []}, headers=t.headers)
    assert r.status_code == 400 and r.json()["where"] == "$.messages"
    r = client.post("/v1/screen/batch", json={"messages": [{"text": "x"}] * 1001}, headers=t.headers)
    assert r.status_code == 400 and r.json()["where"] == "$.messages"
    r = client.post("/v1/screen/batch", json={"messages": [{"text": f"【示例商城】第{i}条"} for i in range(1000)]},
                    headers=t.headers)
    assert r.status_code == 200 and len(r.json()["verdicts"]) == 1000


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/v1/screen", {"text": 5}, "$.text"),
        ("/v1/screen", {"txt": "x"}, "$.txt"),
        ("/v1/screen", {"text": "x", "kind": "spam"}, "$.kind"),
        ("/v1/screen", [1], "$"),
        ("/v1/screen", {}, "$"),
        ("/v1/screen", {"text": "   "}, "$.text"),
        ("/v1/screen/batch", {"messages": [{"text": "a"}, {"text": 3}]}, "$.messages[1].text"),
        ("/v1/screen/batch", {"messages": [{"text": "a"}, {"text": ""}]}, "$.messages[1].text"),
        ("/v1/screen/batch", {"messages": "a"}, "$.messages"),
        ("/v1/screen", {"text": "a\u0000b"}, "$.text"),
        ("/v1/screen/batch", {"messages": [{"text": "a", "id": "x\u0000"}]}, "$.messages[0].id"),
    ],
)
def test_schema_errors_are_400_naming_the_json_path(client: TestClient, make_tenant, path, body, where) -> None:
    t = make_tenant()
    r = client.post(path, json=body, headers=t.headers)
    assert r.status_code == 400, r.text
    assert r.json()["where"] == where and r.json()["code"].startswith("input.")


def test_malformed_json_oversize_bodies_and_bad_parameters(client: TestClient, make_tenant) -> None:
    t = make_tenant()
    r = client.post("/v1/screen", content=b'{"text": "x"', headers={**t.headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "input.json"
    r = client.post("/v1/screen", json={"text": "x" * (3 * 1024 * 1024)}, headers=t.headers)
    assert r.status_code == 413 and r.json()["code"] == "input.too_large"
    r = client.post("/v1/screen?content_only=maybe", json={"text": "x"}, headers=t.headers)
    assert r.status_code == 400 and r.json()["where"] == "query content_only"


# -- rate limits ---------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_retry_after(client: TestClient, make_tenant) -> None:
    _wait_for_fresh_window()
    t = make_tenant(rate_limit=3)
    other = make_tenant(rate_limit=3)
    for i in range(3):
        assert client.post("/v1/screen", json={"text": f"{HAM}{i}"}, headers=t.headers).status_code == 200
    r = client.post("/v1/screen", json={"text": HAM}, headers=t.headers)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # limits are per tenant
    assert client.post("/v1/screen", json={"text": HAM}, headers=other.headers).status_code == 200
    # a batch counts its messages
    r = client.post("/v1/screen/batch", json={"messages": [{"text": HAM}] * 3}, headers=other.headers)
    assert r.status_code == 429


# -- health, readiness, metrics, OpenAPI -----------------------------------------------------------------
def test_health_readiness_metrics_and_openapi(client: TestClient, make_tenant) -> None:
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["model"] == "none"
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "database": "ok", "redis": "ok"}
    t = make_tenant()
    blocks = _metric(client, "smsguard_decisions_total", decision="block", category="gambling")
    client.post("/v1/screen", json={"text": SPAM + str(time.time_ns())}, headers=t.headers)
    text = client.get("/metrics").text
    assert _metric(client, "smsguard_decisions_total", decision="block", category="gambling") == blocks + 1
    assert 'smsguard_http_requests_total{method="POST",route="/v1/screen",status="200"}' in text
    assert 'smsguard_http_request_duration_seconds_bucket{le="0.01",route="/v1/screen"}' in text
    assert "smsguard_verdict_cache_total" in text and "smsguard_rate_limited_total" in text
    spec = client.get("/schema/openapi.json").json()
    assert {"/v1/screen", "/v1/screen/batch", "/v1/verdicts/{verdict_id}", "/v1/admin/reload", "/healthz",
            "/readyz", "/metrics"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# -- admin reload ----------------------------------------------------------------------------------
def test_admin_reload(backend, reloadable_engine, make_tenant) -> None:
    from smsguard.api import create_app

    admin = make_tenant(admin=True)
    plain = make_tenant()
    app = create_app(reloadable_engine, settings=backend.settings(redis_namespace=backend.namespace + ":reload"))
    with TestClient(app) as c:
        r = c.post("/v1/admin/reload", json={}, headers=plain.headers)
        assert r.status_code == 403 and r.json()["code"] == "auth.forbidden"
        before = c.get("/healthz").json()["policy"]
        policy = reloadable_engine.config.policy_path
        policy.write_text(policy.read_text("utf-8").replace("review_at: 0.95\n", "review_at: 0.8\n"), "utf-8")
        r = c.post("/v1/admin/reload", json={"what": ["policy"]}, headers=admin.headers)
        assert r.status_code == 200 and r.json()["policy"] != before
        assert c.get("/healthz").json()["policy"] == r.json()["policy"]
        # a broken file is refused with its key path, and the versions in force stay
        policy.write_text(policy.read_text("utf-8").replace("review_at: 0.8\n", "review_at: high\n"), "utf-8")
        bad = c.post("/v1/admin/reload", json={"what": ["policy"]}, headers=admin.headers)
        assert bad.status_code == 422 and "thresholds.review_at" in (bad.json()["where"] or "")
        assert c.get("/healthz").json()["policy"] == r.json()["policy"]
        r = c.post("/v1/admin/reload", json={"what": ["everything"]}, headers=admin.headers)
        assert r.status_code == 400 and r.json()["where"] == "$.what[0]"


# -- local verdict cache, leased rate-limit tokens, spliced answers ------------------------------------
def test_spliced_answer_is_byte_for_byte_the_encoded_screen_verdict(api_engine) -> None:
    import msgspec

    from smsguard.api._schemas import ScreenVerdict
    from smsguard.api._verdict_cache import Cached as _Cached
    from smsguard.engine import Message

    for engine in (api_engine,):
        for text in (SPAM, HAM):
            v = engine.screen_many([Message(text=text)], content_only=False)[0]
            raw = msgspec.json.encode(v)
            for e in (_Cached.from_json(raw), _Cached.from_json(raw, v)):
                for mid in (None, "m-1", 7, 'q"uote'):
                    for cached in (True, False):
                        want = msgspec.json.encode(ScreenVerdict(
                            **{f: getattr(v, f) for f in v.__struct_fields__ if f != "id"}, id=mid,
                            verdict_id="abc", cached=cached))
                        assert e.answer(mid, "abc", cached) == want
            assert (e.decision, e.score, e.policy) == (v.decision, v.score, v.versions.policy)
            # a verdict stored with an id (not what this module writes) is normalized, not mis-spliced
            other = _Cached.from_json(msgspec.json.encode(msgspec.structs.replace(v, id="x")))
            assert other.answer(None, "abc", True) == e.answer(None, "abc", True)


def test_repeats_are_answered_from_the_process_cache_and_still_audited(client: TestClient, make_tenant) -> None:
    t = make_tenant(rate_limit=100_000)
    text = f"{HAM} local {time.time_ns()}"
    first = client.post("/v1/screen", json={"text": text, "id": 1}, headers=t.headers).json()
    again = [client.post("/v1/screen", json={"text": text, "id": f"r{i}"}, headers=t.headers).json()
             for i in range(5)]
    assert first["cached"] is False and all(v["cached"] for v in again)
    assert [v["id"] for v in again] == [f"r{i}" for i in range(5)]
    assert len({v["verdict_id"] for v in [first, *again]}) == 6
    strip = {"id", "verdict_id", "cached"}
    assert all({k: x for k, x in v.items() if k not in strip} == {k: x for k, x in first.items() if k not in strip}
               for v in again)
    for v in again:  # every answer, even one that never touched Redis, is a committed row
        stored = client.get(f"/v1/verdicts/{v['verdict_id']}", headers=t.headers).json()
        assert stored["cached"] is True and stored["id"] == v["id"] and stored["text"] == text


def test_leased_rate_limit_tokens_never_admit_more_than_the_limit(client: TestClient, make_tenant) -> None:
    _wait_for_fresh_window()
    t = make_tenant(rate_limit=30)  # leased 3 at a time
    codes = [client.post("/v1/screen", json={"text": f"{HAM}{i % 4}"}, headers=t.headers).status_code
             for i in range(31)]
    assert codes == [200] * 30 + [429]
    u = make_tenant(rate_limit=30)
    r = client.post("/v1/screen/batch", json={"messages": [{"text": HAM}] * 28}, headers=u.headers)
    assert r.status_code == 200
    r = client.post("/v1/screen/batch", json={"messages": [{"text": HAM}] * 3}, headers=u.headers)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # a refused request counts too: the window is spent for every process
    assert client.post("/v1/screen", json={"text": HAM}, headers=u.headers).status_code == 429


def test_requests_of_one_loop_turn_share_a_commit_and_a_redis_pipeline(client: TestClient, make_tenant) -> None:
    """Requests reaching the service in one turn of the event loop: one SQL commit, one lookup pipeline, and the
    SETs of fresh verdicts ride along with the next lookups; each answer is still its own committed row."""
    import asyncio

    from smsguard.engine import Message

    service = client.app.state.service
    t = make_tenant(rate_limit=100_000)
    texts = [f"{HAM} turn {time.time_ns()} {i}" for i in range(5)]

    async def together(ids: list[str]) -> list[bytes]:
        key = await service.authenticate(f"Bearer {t.key}", None)
        answers = await asyncio.gather(*(service.screen(key, [Message(text=x, id=i)], content_only=False, paths=["$"])
                                         for x, i in zip(texts, ids, strict=True)))
        return [a for [a] in answers]

    client.post("/v1/screen", json={"text": HAM}, headers=t.headers)  # leases rate-limit tokens for what follows
    commits = service.writer.batches
    first = [msgspec.json.decode(a) for a in client.blocking_portal.call(together, ["a0", "a1", "a2", "a3", "a4"])]
    assert service.writer.batches == commits + 1
    assert [v["id"] for v in first] == ["a0", "a1", "a2", "a3", "a4"] and not any(v["cached"] for v in first)
    service.cache._local.clear()  # as another process would: only Redis knows these verdicts now
    again = [msgspec.json.decode(a) for a in client.blocking_portal.call(together, ["b0", "b1", "b2", "b3", "b4"])]
    assert all(v["cached"] for v in again)
    assert [v["decision"] for v in again] == [v["decision"] for v in first]
    for v in [*first, *again]:
        stored = client.get(f"/v1/verdicts/{v['verdict_id']}", headers=t.headers).json()
        assert stored["id"] == v["id"] and stored["cached"] == v["cached"]


def test_a_bad_row_fails_only_its_own_request_in_a_shared_commit(client: TestClient, make_tenant) -> None:
    import asyncio
    from datetime import UTC, datetime

    from smsguard.api._service import new_verdict_id

    service = client.app.state.service
    t = make_tenant()
    body = client.post("/v1/screen", json={"text": f"{HAM} {time.time_ns()}"}, headers=t.headers).json()

    def row(verdict_id: str) -> tuple:
        return (verdict_id, t.tenant_id, datetime.now(UTC), None, "0" * 64, "pass", 0.0, "p", "l", "m", False,
                HAM, msgspec.json.encode({**body, "verdict_id": verdict_id}).decode())

    good, taken = new_verdict_id(), body["verdict_id"]  # a verdict id already stored: its INSERT fails

    async def together() -> list[BaseException | None]:
        return await asyncio.gather(service._write_together([row(good)], "key:test"),
                                    service._write_together([row(taken)], "key:test"), return_exceptions=True)

    ok, failed = client.blocking_portal.call(together)
    assert ok is None and isinstance(failed, Exception)
    assert client.get(f"/v1/verdicts/{good}", headers=t.headers).status_code == 200
