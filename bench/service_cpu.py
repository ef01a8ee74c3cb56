"""Bench: CPU time of one cached screening through the API's ``Service`` (authenticate + screen + audit row),
in-process, without HTTP: the part of a ``/v1/screen`` request that ``api/_service.py`` and its helpers
(``_auth``, ``_rate_limit``, ``_verdict_cache``) own.

    .venv/bin/python bench/service_cpu.py [--n 4000] [--rounds 3]

Prints the lowest CPU µs per call of ``--rounds`` rounds of ``--n`` concurrent calls (process CPU time, not wall
time: on a shared, loaded machine the wall time mostly measures the other processes). Compare two versions of the
code by running it alternately on each, in the same session.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def measure(n: int, rounds: int) -> float:
    from smsguard.api._service import Service
    from smsguard.core import Settings
    from smsguard.engine import Message
    from smsguard.runtime import Runtime
    from smsguard.storage import create_key, create_tenant

    svc = Service(Runtime(Settings(data_dir=Path(tempfile.mkdtemp()), rate_limit=10**9)), owns_runtime=True)
    await svc.start()
    try:
        tenant = create_tenant(svc.db, "bench", rate_limit=10**9)
        key, _ = create_key(svc.db, tenant.name)
        messages = [Message(text="【示例商城】您的订单已发货，请注意查收。")]

        async def one() -> None:
            info = await svc.authenticate(f"Bearer {key}", None)
            await svc.screen(info, messages, content_only=False, paths=["$"])

        for _ in range(300):  # warm-up: the verdict is cached, the key remembered, the lease taken
            await one()
        best = float("inf")
        for _ in range(rounds):
            t0 = time.process_time()
            await asyncio.gather(*(one() for _ in range(n)))
            best = min(best, (time.process_time() - t0) / n * 1e6)
        return best
    finally:
        await svc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"cached screen through Service: {asyncio.run(measure(args.n, args.rounds)):.1f} CPU µs per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
