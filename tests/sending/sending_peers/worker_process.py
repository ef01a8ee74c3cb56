"""One gateway worker as its own process against local peers (the crash tests kill it mid-window).

    python -m sending_peers.worker_process --redis URL --ns NS --channel cmpp:cmpp:7890 [...]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

from smsguard.sending import (
    CircuitBreaker,
    GatewayWorker,
    GroupCommit,
    MessageStore,
    PhoneSeal,
    PlainPhones,
    RetryPolicy,
    Router,
    VaultPhones,
)
from smsguard.sending._gateway import Gateway
from smsguard.sending._throttle import Throttle, Unlimited
from smsguard.sending._worker import Channel


def _build_channel(spec: str, window: int, redis: Any, ns: str, rate: float) -> Channel:
    from sending_peers.processes import CMPP_ACCOUNT, HTTP_TOKEN, SMPP_ACCOUNT
    from smsguard.sending._cmpp_client import CmppGateway
    from smsguard.sending._http import HttpGateway, HttpProviderConfig
    from smsguard.sending._loopback import LoopbackGateway
    from smsguard.sending._smpp import SmppGateway
    from smsguard.sending._throttle import RedisThrottle

    kind, name, port = [*spec.split(":"), "", ""][:3]
    gateway: Gateway
    if kind == "cmpp":
        gateway = CmppGateway(name, "127.0.0.1", int(port), *CMPP_ACCOUNT, window=window)
    elif kind == "smpp":
        gateway = SmppGateway(name, "127.0.0.1", int(port), *SMPP_ACCOUNT, window=window)
    elif kind == "http":
        config = HttpProviderConfig(f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {HTTP_TOKEN}"},
                                    poll_interval=0.05)
        gateway = HttpGateway(name, config, window=window)
    else:
        gateway = LoopbackGateway(name, window=window)
    throttle: Throttle = RedisThrottle(redis, f"{ns}:throttle:{name}", rate) if rate > 0 else Unlimited()
    return Channel(gateway, throttle)


async def _main(args: argparse.Namespace) -> None:
    from smsguard.sending._store import redis_client

    r = redis_client(args.redis)
    seal: PhoneSeal = PlainPhones()
    if args.sealed:  # numbers come sealed from a release step: open them with the deployment's key
        from smsguard.runtime import Runtime

        seal = VaultPhones(Runtime().vault)
    journal = None
    if args.journal:  # as `serve`'s gateway role does: each submit in SQL before its outbox entry is acked
        from smsguard.batches import SqlSentJournal
        from smsguard.runtime import Runtime

        journal = GroupCommit(SqlSentJournal(Runtime().batch_context()))
    store = MessageStore(r, args.ns, seal=seal, sent_events=journal is None)
    channels = [_build_channel(spec, args.window, r, args.ns, args.rate) for spec in args.channel]
    for c in channels:
        c.breaker = CircuitBreaker(open_for=0.5)
    router = Router({"default": [c.name for c in channels]})
    worker = GatewayWorker(
        store, channels, router, consumer=args.consumer, in_doubt_grace=args.in_doubt_grace,
        retry=RetryPolicy(base=0.05, max_delay=1.0), journal=journal,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    print(f"READY {os.getpid()}", flush=True)
    await worker.run(stop)
    await worker.close()
    await r.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="run one gateway worker against local peers")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--ns", required=True)
    parser.add_argument("--consumer", default="worker-1")
    parser.add_argument("--channel", action="append", required=True, help="KIND:NAME:PORT, in failover order")
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second per channel (0 = no limit)")
    parser.add_argument("--in-doubt-grace", type=float, default=10.0)
    parser.add_argument("--sealed", action="store_true", help="open sealed numbers with the settings' phone key")
    parser.add_argument("--journal", action="store_true", help="journal submits to the settings' SQL database")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
