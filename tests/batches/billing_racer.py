"""One racing process of tests/batches/test_billing_concurrency.py: waits for a common start time, then takes
holds on the ledger (``hold``) or submits batches (``submit``) as fast as it can, and prints what happened as
JSON. Run as ``python billing_racer.py '<json config>'``."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    cfg = json.loads(sys.argv[1])
    import redis

    from smsguard import batches, billing
    from smsguard.engine import Engine, EngineConfig
    from smsguard.storage import make_engine

    db = make_engine(cfg["database_url"])
    tenant, n, amount = cfg["tenant"], cfg["attempts"], cfg["amount"]
    ctx = None
    if cfg["mode"] == "submit":
        engine = Engine(EngineConfig(policy_path=Path(cfg["policy"]), lexicon_dirs=(Path(cfg["lexicon"]),)))
        ctx = batches.Context(db=db, redis=redis.Redis.from_url(cfg["redis_url"]),
                              vault=batches.vault_for(Path(cfg["data_dir"])), namespace=cfg["namespace"],
                              screening=engine)
    while time.time() < cfg["start"]:
        time.sleep(0.005)
    out = {"ok": 0, "refused": 0, "errors": [], "pid": os.getpid()}
    for i in range(n):
        try:
            if ctx is None:
                with db.begin() as conn:
                    billing.hold(conn, tenant, f"race:{os.getpid()}:{i}", amount, prices={"mobile": amount},
                                 actor=f"test:racer:{os.getpid()}")
            else:
                # numbers of this process and attempt only: frequency caps do not hold any of them back
                numbers = [f"139{os.getpid() % 100_000:05d}{i:02d}{k}" for k in range(cfg["per_batch"])]
                batches.create_batch(ctx, tenant, content=cfg["text"], numbers=numbers,
                                     actor=f"test:racer:{os.getpid()}")
            out["ok"] += 1
        except billing.InsufficientBalance:
            out["refused"] += 1
        except Exception as e:  # reported, and the test fails on any
            out["errors"].append(f"{type(e).__name__}: {e}"[:300])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
