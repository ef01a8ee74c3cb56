"""Two hosts of one deployment: separate data directories and ports, one PostgreSQL + Redis, the same
configured secrets (``smsguard keys init`` + ``SMSGUARD_SECRETS_DIR``). An opt-out taken on host A, through
the API and as an MO 退订 reply, is enforced by host B's release worker: both hosts name a number by the same
keyed hash and can decrypt each other's numbers. Without configured secrets ``serve`` refuses to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import serve_support

from smsguard.core import PROJECT_ROOT

SMSGUARD = [sys.executable, "-m", "smsguard"]
CONTENT = "【示例商城】您的快递已到驿站，请及时取件。"


def _host_env(backend, data_dir: Path, secrets: Path) -> dict[str, str]:
    return backend.env(SMSGUARD_DATA_DIR=str(data_dir), SMSGUARD_SECRETS_DIR=str(secrets))


def test_an_opt_out_on_host_a_is_enforced_by_host_b(backend, migrated_db, tmp_path: Path, unique_name) -> None:
    if backend.name != "postgresql":
        pytest.skip("two hosts share one PostgreSQL + Redis")
    from smsguard.storage import create_key, create_tenant

    secrets = tmp_path / "secrets"
    init = subprocess.run([*SMSGUARD, "keys", "init", str(secrets)], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert init.returncode == 0, init.stderr
    env_a = _host_env(backend, tmp_path / "host-a", secrets)
    env_b = _host_env(backend, tmp_path / "host-b", secrets)
    tenant = create_tenant(backend.db, unique_name("hosts"))
    key, _ = create_key(backend.db, tenant.name, admin=True)
    auth = {"Authorization": f"Bearer {key}"}
    port_a, port_b = serve_support.free_port(), serve_support.free_port()
    with serve_support.serve(env_a, port_a, tmp_path / "a.log") as a, \
            serve_support.serve(env_b, port_b, tmp_path / "b.log") as b:
        serve_support.wait_ready(port_a, a, tmp_path / "a.log", timeout=60)
        serve_support.wait_ready(port_b, b, tmp_path / "b.log", timeout=60)
        host_a, host_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        r = httpx.post(f"{host_a}/v1/optouts", headers=auth, json={"phone": "13800000001"})
        assert r.status_code == 200, r.text
        r = httpx.post(f"{host_a}/v1/inbound", headers=auth,
                       json={"phone": "+86 138 0000 0002", "text": "退订", "signature": "示例商城"})
        assert r.status_code == 200 and r.json()["action"] == "opt_out", r.text
        numbers = ["13800000001", "13800000002", "13800000003"]
        r = httpx.post(f"{host_b}/v1/batches", headers=auth, json={"content": CONTENT, "numbers": numbers})
        assert r.status_code == 201, r.text
        batch = r.json()["id"]
        worker = subprocess.run([*SMSGUARD, "batch", "worker", "--until-idle"], env=env_b, capture_output=True,
                                text=True, cwd=PROJECT_ROOT, timeout=120)
        assert worker.returncode == 0, worker.stderr
        r = httpx.get(f"{host_b}/v1/batches/{batch}", headers=auth)
        assert r.json()["counts"].get("opted_out") == 2, r.text
        r = httpx.get(f"{host_b}/v1/batches/{batch}/recipients", headers=auth, params={"status": "opted_out"})
        assert sorted(x["phone"] for x in r.json()["recipients"]) == ["138****0001", "138****0002"]
    # each host kept its own data directory and generated no keys of its own
    for host in ("host-a", "host-b"):
        assert not (tmp_path / host / "phone.key").exists() and not (tmp_path / host / "phone-hash.key").exists()


def test_serve_refuses_to_start_without_the_shared_secrets(backend, tmp_path: Path) -> None:
    env = backend.env(SMSGUARD_DATA_DIR=str(tmp_path / "host"))
    del env["SMSGUARD_SECRETS_DIR"]
    r = subprocess.run([*SMSGUARD, "serve", "--port", str(serve_support.free_port())], env=env, capture_output=True,
                       text=True, cwd=PROJECT_ROOT, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "[settings.secrets_missing]" in lines[0] and "SMSGUARD_PHONE_KEY" in lines[0]
    assert not (tmp_path / "host").exists()  # nothing generated, nothing migrated
