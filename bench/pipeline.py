"""Bench: end-to-end throughput, submit to a final delivery state (issue 16, must-show 6).

One ``smsguard serve`` (all roles: api, release, gateway, relay) on PostgreSQL + a private redis-server takes one
batch of ``--n`` recipients through a real CMPP peer and a real SMPP peer (separate processes, receipts on),
and the same batch through two loopback channels as the baseline, in the same run.

    .venv/bin/python bench/pipeline.py --n 100000 [--rate 0] [--timeout 3600]

Per run, sampled every second from ``GET /v1/batches/{id}`` and the peers' journals: the submit (screening
once per distinct content, the recipients written), the hand-over (no recipient ``queued`` any more), the
peers' acceptance (every part accepted; CMPP/SMPP only) and the final states (the batch ``done``), each as
seconds and messages/s, plus the serve process's peak RSS and the CPU time (user + system) the serve
process(es), the peers and redis-server used per message (PostgreSQL, shared, is not counted): on 2 cores,
2,000 / (their sum in ms) msgs/s is the most the machine could give with nothing else running. ``--trace``
prints where the messages are once a second (outbox, submitted per channel, accepted per peer, receipts
outstanding, events not yet in SQL). The ratio is the peer run's end-to-end rate over the loopback baseline's.
Bounded: each run stops after ``--timeout`` seconds; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "sending"))  # the test peers (not shipped)


SPLIT = {"a": "api,release,relay", "b": "gateway", "c": "gateway"}
"""``--split``: the roles in three processes (one GIL each) instead of one."""


class Stages:
    """``--trace``: where the batch's messages are, once a second — the outbox (not yet acknowledged by a gateway),
    submitted per channel (the gateway heartbeats), accepted per peer journal, receipts outstanding, the events
    stream not yet relayed to SQL, and the recipients' states in SQL."""

    def __init__(self, redis_url: str, journals: tuple[Path, ...]) -> None:
        import redis

        self.r = redis.Redis.from_url(redis_url, decode_responses=True)
        self.journals = journals

    def _key(self, suffix: str) -> str | None:
        return next(iter(self.r.scan_iter(match=f"*:{suffix}", count=1000)), None)

    def line(self, t: float, counts: dict) -> str:
        import json

        from hosts_support import accepted

        outbox, events = self._key("send:outbox"), self._key("send:events")
        depth = 0
        if outbox:
            for g in self.r.xinfo_groups(outbox):
                if g["name"] == "workers":
                    depth = int(g.get("lag") or 0) + int(g["pending"])
        sent: dict[str, int] = {}
        for key in self.r.scan_iter(match="*:send:gw:*", count=1000):
            for name, ch in json.loads(self.r.get(key) or "{}").get("channels", {}).items():
                sent[name] = sent.get(name, 0) + ch["submitted"]
        waiting = sum(self.r.zcard(k) for k in self.r.scan_iter(match="*:send:outstanding:*", count=1000))
        peers = [sum(accepted(j).values()) for j in self.journals]
        return (f"  t={t:6.1f}s outbox={depth:6d} submitted={sent} peers={peers} outstanding={waiting:6d} "
                f"events={self.r.xlen(events) if events else 0:6d} sql={counts}")


def one_run(root: Path, database: str, *, n: int, rate: float, loopback: bool, timeout: float,
            split: bool = False, trace: bool = False) -> dict:
    import httpx
    import psutil
    import psycopg
    from hosts_support import Hosts, PrivateRedis, accepted, channels_env, environment
    from sending_peers.processes import cmpp_peer, smpp_peer

    from smsguard.batches import vault_for
    from smsguard.storage import create_key, create_tenant, make_engine, migrate

    schema = f"bench_pipeline_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{database}{'&' if '?' in database else '?'}options=-csearch_path%3D{schema}"
    sa_url = "postgresql+psycopg" + url[len("postgresql"):]
    db = make_engine(sa_url)
    redis_server = PrivateRedis(root / "redis")
    journals = (root / "cmpp.jsonl", root / "smpp.jsonl")
    peers: list = []
    hosts = None
    try:
        migrate(db)
        keys = root / "keys"
        vault_for(keys)
        tenant = create_tenant(db, f"pipeline-{time.time_ns()}")
        key, _ = create_key(db, tenant.name, label="pipeline")
        auth = {"Authorization": f"Bearer {key}"}
        redis_server.start()
        if not loopback:
            peers = [cmpp_peer(journal=journals[0]).start(), smpp_peer(journal=journals[1]).start()]
        env = environment(sa_url, redis_server.url, f"bench-{uuid.uuid4().hex[:6]}", root / "channels.yaml")
        env.update(channels_env(root, peers, rate), SMSGUARD_SECRETS_DIR=str(root / "secrets"),
                   SMSGUARD_MAX_BODY=str(max(2 * 2**20, 32 * n)))  # the batch's numbers in one request body
        subprocess.run([sys.executable, "-m", "smsguard", "keys", "init", str(root / "secrets")], env=env,
                       check=True, capture_output=True)
        hosts = Hosts(root, env, keys, tuple(SPLIT) if split else ("a",), roles=SPLIT if split else None)
        hosts.start()
        port = hosts.ports["a"]
        print(f"serve pid {hosts.procs['a'].pid} ({'loopback' if loopback else 'cmpp + smpp'})", flush=True)
        procs = [psutil.Process(p.pid) for p in hosts.procs.values()]
        peer_procs = [psutil.Process(p.proc.pid) for p in peers]
        redis_procs = [psutil.Process(redis_server.proc.pid)]

        def cpu(ps: list) -> float:  # user + system seconds, children included (a peer's node process)
            total = 0.0
            for p in ps:
                for q in (p, *p.children(recursive=True)):
                    t = q.cpu_times()
                    total += t.user + t.system
            return total

        cpu0 = (cpu(procs), cpu(peer_procs), cpu(redis_procs))
        numbers = [f"13{i % 10}{i:08d}"[-11:] for i in range(n)]
        t0 = time.monotonic()
        r = httpx.post(f"http://127.0.0.1:{port}/v1/batches", headers=auth, timeout=timeout,
                       json={"name": "pipeline", "content": "【示例商城】您的订单已发货，请注意查收。",
                             "numbers": numbers, "kind": "notification", "signature": "示例商城"})
        if r.status_code != 201:
            raise SystemExit(f"batch refused: {r.status_code} {r.text[:300]}")
        batch_id = r.json()["id"]
        marks = {"submit": time.monotonic() - t0}
        taken = [(0.0, 0)]  # (seconds, parts accepted at the peers) whenever that count moved
        rss = 0
        stages = Stages(redis_server.url, journals if not loopback else ()) if trace else None
        while time.monotonic() - t0 < timeout:
            rss = max(rss, sum(p.memory_info().rss for p in procs))
            body = httpx.get(f"http://127.0.0.1:{port}/v1/batches/{batch_id}", headers=auth, timeout=60).json()
            counts = body["counts"]
            if "handover" not in marks and not counts.get("queued") and body["state"] != "scheduled":
                marks["handover"] = time.monotonic() - t0
            if not loopback:
                took = sum(accepted(*journals).values())
                if took != taken[-1][1]:
                    taken.append((time.monotonic() - t0, took))
            if stages is not None:
                print(stages.line(time.monotonic() - t0, counts), flush=True)
            if body["state"] == "done":
                marks["final"] = time.monotonic() - t0
                if not loopback:  # when the peers had accepted all they ever would
                    marks["accepted"] = taken[-1][0]
                break
            time.sleep(1.0)
        else:
            raise SystemExit(f"not done after {timeout} s: {body}\n{hosts.tails()}")
        cpu_s = (cpu(procs) - cpu0[0], cpu(peer_procs) - cpu0[1], cpu(redis_procs) - cpu0[2])
        return {"n": n, "marks": marks, "counts": counts, "rss_mb": rss / 2**20, "cpu": cpu_s,
                "twice": sum(1 for v in accepted(*journals).values() if v > 1) if not loopback else 0}
    finally:
        if hosts is not None:
            hosts.stop()
        for peer in peers:
            peer.stop()
        redis_server.stop()
        db.dispose()
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=0.0, help="msgs/s per channel (0 = unlimited)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a run may take before it stops")
    parser.add_argument("--database", default=os.environ.get("SMSGUARD_TEST_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--peers-only", action="store_true", help="skip the loopback baseline (for profiling)")
    parser.add_argument("--trace", action="store_true", help="print where the messages are, once a second")
    parser.add_argument("--split", action="store_true", help=f"roles in three processes: {SPLIT}")
    args = parser.parse_args()
    results = {}
    runs = (("loopback (baseline)", True), ("cmpp + smpp peers", False))
    for name, loopback in runs[1:] if args.peers_only else runs:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            results[name] = one_run(Path(tmp), args.database, n=args.n, rate=args.rate, loopback=loopback,
                                    timeout=args.timeout, split=args.split, trace=args.trace)
    shape = "three `smsguard serve` processes " + str(SPLIT) if args.split else "one `smsguard serve` (all roles)"
    print(f"{args.n:,} recipients, {shape}, PostgreSQL + redis-server, load "
          f"{os.getloadavg()[0]:.1f}")
    print("| run | submit | hand-over | accepted at peers | final (done) | end-to-end msgs/s | peak RSS | "
          "CPU ms/msg serve · peers · redis | counts |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, r in results.items():
        m = r["marks"]

        def cell(stage: str, m: dict = m, n: int = r["n"]) -> str:
            return f"{m[stage]:.1f} s ({n / m[stage]:,.0f}/s)" if stage in m else "–"

        per_msg = " · ".join(f"{1000 * c / r['n']:.2f}" for c in r["cpu"])
        print(f"| {name} | {cell('submit')} | {cell('handover')} | {cell('accepted')} | {cell('final')} | "
              f"{r['n'] / m['final']:,.0f} | {r['rss_mb']:.0f} MB | "
              f"{per_msg} | {r['counts']} |")
    if args.peers_only:
        return
    base, peer = (results[k]["n"] / results[k]["marks"]["final"] for k in results)
    print(f"ratio peers / loopback end to end: {peer / base:.2f}; numbers at a peer twice: "
          f"{results['cmpp + smpp peers']['twice']}")


if __name__ == "__main__":
    main()
