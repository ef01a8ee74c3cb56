"""Several smsguard "hosts" on 127.0.0.1 for the multi-host fault test and its benchmark (bench/hosts.py):
a private, restartable redis-server, ``smsguard serve`` processes with their own data dirs and ports on one
database and one Redis, and the count of what the peers accepted (from their journals)."""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from serve_support import free_port, start, stop, wait_ready


def accepted(*journals: Path) -> collections.Counter[str]:
    """Parts each number's messages had accepted at the peers (national number → count)."""
    counts: collections.Counter[str] = collections.Counter()
    for journal in journals:
        if journal.exists():
            for line in journal.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a SIGKILL
                if rec.get("event") == "accepted":
                    counts[rec["dest"].lstrip("+")[-11:]] += 1
    return counts


class PrivateRedis:
    """A redis-server of its own (append-only file fsynced on every write), restartable in place."""

    def __init__(self, root: Path) -> None:
        self.port, self.dir = free_port(), root
        root.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def restart(self) -> None:
        assert self.proc is not None
        self.proc.terminate()  # SIGTERM: redis flushes the append-only file and exits
        self.proc.wait(20)
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Hosts:
    """``smsguard serve`` (all roles) per name, each with its own data dir (the deployment's key files copied
    from ``keys_from``) and port; ``env`` is shared (database, Redis, channels)."""

    def __init__(self, root: Path, env: Mapping[str, str], keys_from: Path, names: tuple[str, ...],
                 roles: Mapping[str, str] | None = None) -> None:
        self.root, self.env, self.keys_from, self.names = root, dict(env), keys_from, names
        self.roles = dict(roles or {})  # name -> SMSGUARD_ROLES (default: all roles)
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.logs: dict[str, Path] = {}

    def start(self, ready_timeout: float = 90.0) -> None:
        for name in self.names:
            data = self.root / f"host-{name}"
            shutil.copytree(self.keys_from, data, ignore=shutil.ignore_patterns("*.db*", "redis*", "host-*"),
                            dirs_exist_ok=True)
            env = {**self.env, "SMSGUARD_DATA_DIR": str(data), "SMSGUARD_NODE": f"host-{name}"}
            if name in self.roles:
                env["SMSGUARD_ROLES"] = self.roles[name]
            self.ports[name], self.logs[name] = free_port(), self.root / f"host-{name}.log"
            self.procs[name] = start(["serve", "--port", str(self.ports[name])], env, self.logs[name])
        for name in self.names:
            if "api" in self.roles.get(name, "api"):
                wait_ready(self.ports[name], self.procs[name], self.logs[name], timeout=ready_timeout)
                continue
            deadline = time.monotonic() + ready_timeout  # no api: its roles say they run
            while "running roles" not in self.logs[name].read_text(errors="replace"):
                if self.procs[name].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"host {name} did not start:\n{self.logs[name].read_text(errors='replace')}")
                time.sleep(0.1)

    def kill(self, name: str) -> None:
        """``kill -9``: the host is gone mid-work."""
        self.procs[name].kill()
        self.procs[name].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                stop(proc)

    def tails(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in self.logs.values()
                         if p.exists())


def environment(database_url: str, redis_url: str, namespace: str, channels: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, SMSGUARD_REDIS_NAMESPACE=namespace,
               SMSGUARD_CHANNELS=str(channels), **extra)
    return env


def set_aside_due_batches(db) -> int:
    """Cancel what earlier tests of the session left due on this database (scheduled, releasing, sending) and end
    their handed-over recipients: the hosts' release workers would send (or re-drive) them to these peers, and
    the count at the peers is this test's."""
    from sqlalchemy import update

    from smsguard.batches._tables import batches, recipients

    with db.begin() as conn:
        # a release worker that finds Redis empty re-drives every recipient SQL says was handed over: theirs too
        conn.execute(update(recipients).where(recipients.c.status == "submitted").values(status="unknown"))
        return conn.execute(update(batches).where(batches.c.state.in_(("scheduled", "releasing", "sending")))
                            .values(state="cancelled")).rowcount


def channels_env(root: Path, peers: list, rate: float) -> dict[str, str]:
    """A channels file for a CMPP and an SMPP peer (``peers``, in that order) or, with no peers, two loopback
    channels; returns the variables that point ``serve`` at it (and the peers' passwords)."""
    from sending_peers.processes import CMPP_ACCOUNT, SMPP_ACCOUNT

    channels = root / "channels.yaml"
    if not peers:
        channels.write_text(f"channels:\n  - {{name: lo1, protocol: loopback, rate: {rate}}}\n"
                            f"  - {{name: lo2, protocol: loopback, rate: {rate}}}\n")
    else:
        channels.write_text(
            "channels:\n"
            f"  - {{name: cm, protocol: cmpp, host: 127.0.0.1, port: {peers[0].port}, account: '{CMPP_ACCOUNT[0]}',"
            f" password_env: CMPP_PW, source: '106900', rate: {rate}, receipt_deadline: 120}}\n"
            f"  - {{name: sm, protocol: smpp, host: 127.0.0.1, port: {peers[1].port}, account: '{SMPP_ACCOUNT[0]}',"
            f" password_env: SMPP_PW, rate: {rate}, receipt_deadline: 120}}\n")
    return {"SMSGUARD_CHANNELS": str(channels), "CMPP_PW": CMPP_ACCOUNT[1], "SMPP_PW": SMPP_ACCOUNT[1]}


def fault_run(root: Path, env: Mapping[str, str], db, keys_from: Path, *, n: int, opted: int, rate: float,
              faults: bool = True, loopback: bool = False, timeout: float = 240.0) -> dict:
    """Three hosts (all roles) send one batch of ``n`` recipients (``opted`` of them opted out on host C first)
    through a CMPP and an SMPP peer (or two loopback channels); with ``faults``: ``kill -9`` host B after a
    fifth, restart Redis after two fifths, kill and restart the CMPP peer after three fifths. Returns the
    batch's final counts, what the peers accepted and the timings."""
    import httpx
    from sending_peers.processes import cmpp_peer, smpp_peer

    from smsguard.batches import vault_for
    from smsguard.storage import create_key, create_tenant, migrate

    migrate(db)
    set_aside_due_batches(db)
    vault_for(keys_from)  # the deployment's key files, copied to every host
    tenant = create_tenant(db, f"hosts-{time.time_ns()}")
    key, _ = create_key(db, tenant.name, label="hosts")
    auth = {"Authorization": f"Bearer {key}"}
    redis_server = PrivateRedis(root / "redis")
    redis_server.start()
    journals = (root / "cmpp.jsonl", root / "smpp.jsonl")
    peers = [] if loopback else [cmpp_peer(journal=journals[0]).start(), smpp_peer(journal=journals[1]).start()]
    env = {**env, "REDIS_URL": redis_server.url, **channels_env(root, peers, rate)}
    hosts = Hosts(root, env, keys_from, ("a", "b", "c"))
    out: dict = {"hosts": hosts}

    def wait(cond, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not after {timeout} s\n{hosts.tails()}")
            time.sleep(0.1)

    def sent() -> int:
        return sum(accepted(*journals).values())

    try:
        hosts.start()
        numbers = [f"138{i:08d}" for i in range(n)]
        a, c = hosts.ports["a"], hosts.ports["c"]
        for phone in numbers[:opted]:  # opt-outs taken on host C, the batch created on host A
            r = httpx.post(f"http://127.0.0.1:{c}/v1/optouts", headers=auth, timeout=30,
                           json={"phone": phone, "signature": "示例商城"})
            assert r.status_code == 200, r.text
        t0 = time.monotonic()
        r = httpx.post(f"http://127.0.0.1:{a}/v1/batches", headers=auth, timeout=600,
                       json={"name": "hosts", "content": "【示例商城】您的订单已发货。", "numbers": numbers,
                             "kind": "notification", "signature": "示例商城"})
        assert r.status_code == 201, r.text
        batch_id = r.json()["id"]
        out["submit_s"] = time.monotonic() - t0

        def state() -> dict:
            return httpx.get(f"http://127.0.0.1:{a}/v1/batches/{batch_id}", headers=auth, timeout=30).json()

        if faults and not loopback:
            wait(lambda: sent() >= n // 5, "a fifth at the peers")
            hosts.kill("b")
            wait(lambda: sent() >= 2 * n // 5, "two fifths")
            redis_server.restart()
            wait(lambda: sent() >= 3 * n // 5, "three fifths")
            peers[0].kill()  # the CMPP peer's connections drop; it comes back on its port with its journal
            peers[0] = cmpp_peer(port=peers[0].port, journal=journals[0]).start()
        wait(lambda: state()["state"] == "done", "batch done")
        out["elapsed_s"] = time.monotonic() - t0
        out["counts"] = state()["counts"]
        out["accepted"] = accepted(*journals)
        out["accepted_per_peer"] = {j.stem: sum(accepted(j).values()) for j in journals}
        out["twice_within_a_peer"] = {j.stem: sum(1 for v in accepted(j).values() if v > 1) for j in journals}
        out["numbers"] = numbers
    finally:
        hosts.stop()
        for peer in peers:
            peer.stop()
        redis_server.stop()
    return out
