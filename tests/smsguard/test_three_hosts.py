"""Three hosts, one PostgreSQL + one Redis, a CMPP and an SMPP peer: ``kill -9`` one host mid-batch, restart
Redis once, drop the CMPP peer's connections (kill and restart it). Every recipient ends in exactly one final
state, no number reaches the peers twice (counted in the peers' journals), no opt-out is lost.

The hosts are separate ``smsguard serve`` processes (all roles) with their own data dirs and ports on
127.0.0.1 (tests/hosts_support.py); the data dirs share the deployment's key files. ``bench/hosts.py`` runs the
same with bigger numbers.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hosts_support import fault_run

N = 400
OPTED = 5
RATE = 40  # per channel and second, shared by the three hosts: ~5 s of sending, long enough to hit it mid-batch


@pytest.mark.slow
def test_three_hosts_kill_one_restart_redis_drop_a_peer(backend, tmp_path: Path) -> None:
    if backend.name != "postgresql":
        pytest.skip("three hosts share one PostgreSQL; the embedded SQLite file is one host's")
    env = backend.env(SMSGUARD_REDIS_NAMESPACE=f"{backend.namespace}:hosts{time.time_ns()}")
    try:
        run = fault_run(tmp_path, env, backend.db, backend.data_dir, n=N, opted=OPTED, rate=RATE)
    except TimeoutError as e:
        pytest.fail(str(e))
    counts, accepted = run["counts"], run["accepted"]
    assert counts.get("opted_out") == OPTED, counts  # no opt-out lost
    assert sum(counts.values()) == N and not set(counts) & {"queued", "submitted", "deferred"}, counts
    twice = {p: n for p, n in accepted.items() if n > 1}
    assert not twice, f"{len(twice)} numbers reached the peers twice ({run['twice_within_a_peer']} within one " \
                      f"peer): {list(twice.items())[:5]}"
    assert not set(run["numbers"][:OPTED]) & set(accepted)
    assert counts.get("delivered", 0) + counts.get("unknown", 0) == N - OPTED, counts
    assert len(accepted) >= counts.get("delivered", 0)
    for name in ("a", "c"):  # the survivors stopped cleanly
        assert run["hosts"].procs[name].returncode == 0, run["hosts"].tails()
    print(f"three hosts: {counts} in {run['elapsed_s']:.1f} s; accepted at the peers {run['accepted_per_peer']}")
