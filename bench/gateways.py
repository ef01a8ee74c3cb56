"""Gateway throughput and throttle accuracy against local peers (all on 127.0.0.1).

Run: ``.venv/bin/python bench/gateways.py [--messages 20000] [--window 64] [--rate 1000]``; writes
``bench/results/gateways.md``. Peers are real separate processes: the npm ``smpp`` SMSC
(tests/sending/smpp_peer) and the test simulators in tests/sending/sending_peers (CMPP 3.0 ISMG, CMPP
2.0-only ISMG, SMGP 3.0 SMGW, SGIP 1.2 SMG that connects back to the adapter). Figures:

(a) adapter throughput: ``--messages`` concurrent submits (bounded by ``--window``) from one asyncio
    process, timed from the first submit until every submit response AND every delivery receipt is in,
    for loopback (baseline, no I/O), SMPP, CMPP 3.0, CMPP 2.0, SMGP 3.0 and SGIP 1.2;
(b) throttle accuracy: the same adapters behind a Redis GCRA throttle set to ``--rate`` msgs/s (below
    their capacity), for ``--seconds``; measured rate vs the limit;
(c) the whole worker path (Redis outbox → route → throttle → submit → id map → receipt → final state
    in Redis), unthrottled, ``--worker-messages`` messages;
(d) the customer-facing CMPP server (``sending/_cmpp_server.py``) alone: SUBMITs/s our CMPP client gets
    answered by it in this process, with a handler that accepts everything (the protocol cost only:
    the server is not yet wired to screening and the outbox).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "sending"))  # the test peers (not shipped)

import redis.asyncio as aioredis  # noqa: E402
from sending_peers.doubles import MemoryEvents  # noqa: E402
from sending_peers.processes import (  # noqa: E402
    CMPP_ACCOUNT,
    SGIP_ACCOUNT,
    SGIP_NODE,
    SMGP_ACCOUNT,
    SMPP_ACCOUNT,
    Peer,
    cmpp_peer,
    sgip_peer,
    smgp_peer,
    smpp_peer,
)

from smsguard.sending import (  # noqa: E402
    Channel,
    CmppGateway,
    Gateway,
    GatewayWorker,
    LoopbackGateway,
    MessageStore,
    OutboundMessage,
    RedisThrottle,
    Router,
    SgipGateway,
    SmgpGateway,
    SmppGateway,
    redis_client,
)

TEXT = "【示例银行】您的验证码是{:06d}，5分钟内有效。"


ADAPTERS = ("loopback", "smpp", "cmpp", "cmpp2", "smgp", "sgip")
SP_PORTS: dict[str, int] = {}  # SGIP: the adapter's listener the SMG connects back to


def make(kind: str, port: int, window: int) -> Gateway:
    if kind == "smpp":
        return SmppGateway("smpp", "127.0.0.1", port, *SMPP_ACCOUNT, window=window)
    if kind in ("cmpp", "cmpp2"):
        return CmppGateway(kind, "127.0.0.1", port, *CMPP_ACCOUNT, window=window)
    if kind == "smgp":
        return SmgpGateway("smgp", "127.0.0.1", port, *SMGP_ACCOUNT, window=window)
    if kind == "sgip":
        return SgipGateway("sgip", "127.0.0.1", port, *SGIP_ACCOUNT, node_id=SGIP_NODE, window=window,
                           listen_port=SP_PORTS["sgip"])
    return LoopbackGateway("loopback", window=window)


async def adapter_throughput(kind: str, port: int, n: int, window: int) -> tuple[float, float]:
    """(msgs/s until all responses, msgs/s until all receipts)."""
    gw = make(kind, port, window)
    events = MemoryEvents()
    await gw.start(events)
    warm = [OutboundMessage(f"w{i}", "13800000000", TEXT.format(i)) for i in range(200)]
    await asyncio.gather(*(gw.submit(m) for m in warm))
    await events.wait_for(lambda: len(events.receipts) >= 200, 30)
    events.receipts.clear()
    msgs = [OutboundMessage(f"m{i}", f"1370{i:06d}0", TEXT.format(i)) for i in range(n)]
    start = time.perf_counter()
    await asyncio.gather(*(gw.submit(m) for m in msgs))
    submitted = time.perf_counter() - start
    await events.wait_for(lambda: len(events.receipts) >= n, 120)
    done = time.perf_counter() - start
    await gw.close()
    return n / submitted, n / done


async def throttled(kind: str, port: int, redis_url: str, rate: float, seconds: float, window: int) -> float:
    gw = make(kind, port, window)
    await gw.start(MemoryEvents())
    r = aioredis.Redis.from_url(redis_url)
    key = f"bench:throttle:{uuid.uuid4().hex}"
    # A burst tolerance of 20 ms of traffic lets a lane that was late (CPU shared with the peer) catch up.
    throttle = RedisThrottle(r, key, rate, burst=max(1, int(rate * 0.02)))
    stamps: list[float] = []
    end = time.monotonic() + seconds

    async def one_lane(lane: int) -> None:
        i = 0
        while time.monotonic() < end:
            await throttle.acquire(1)
            await gw.submit(OutboundMessage(f"t{lane}-{i}", "13800000000", TEXT.format(i)))
            stamps.append(time.monotonic())
            i += 1

    await asyncio.gather(*(one_lane(k) for k in range(window)))
    await gw.close()
    await r.delete(key)
    await r.aclose()
    stamps.sort()
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


async def worker_path(kind: str, port: int, redis_url: str, n: int, window: int) -> float:
    r = redis_client(redis_url)
    ns = f"bench:send:{uuid.uuid4().hex[:8]}"
    store = MessageStore(r, ns)
    gw = make(kind, port, window)
    worker = GatewayWorker(store, [Channel(gw)], Router({"default": [gw.name]}), consumer="bench")
    await worker.start()
    msgs = [OutboundMessage(f"p{i}", f"1370{i:06d}0", TEXT.format(i)) for i in range(n)]
    await store.enqueue(msgs)
    stop = asyncio.Event()
    start = time.perf_counter()
    task = asyncio.create_task(worker.run(stop))
    last = msgs[-1].id
    while True:  # done when every message has its final state
        await asyncio.sleep(0.05)
        if (await store.state(last)).get("state") == "delivered":
            pipe = r.pipeline(transaction=False)
            for m in msgs:
                pipe.hget(store.msg_key(m.id), "state")
            if all(s == b"delivered" for s in await pipe.execute()):
                break
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    await worker.close()
    keys = [k async for k in r.scan_iter(match=f"{ns}:*", count=1000)]
    for i in range(0, len(keys), 1000):
        await r.delete(*keys[i : i + 1000])
    await r.aclose()
    return n / elapsed


class _AcceptAll:
    async def on_submit(self, submit: object) -> str:
        return "accepted"


async def cmpp_server_rate(n: int, window: int) -> float:
    from smsguard.sending._cmpp_server import CmppAccount, CmppServer

    account = CmppAccount("123456", "secret", tenant="bench", window=window, rate=1e9)
    server = CmppServer([account], _AcceptAll(), port=0)  # type: ignore[arg-type]
    await server.start()
    gw = CmppGateway("customer", "127.0.0.1", server.port, account.sp_id, account.secret, window=window)
    await gw.start(MemoryEvents())
    msgs = [OutboundMessage(f"s{i}", f"1370{i:06d}0", TEXT.format(i)) for i in range(n)]
    start = time.perf_counter()
    await asyncio.gather(*(gw.submit(m) for m in msgs))
    elapsed = time.perf_counter() - start
    await gw.close()
    await server.stop()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--worker-messages", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gateways.md"))
    args = parser.parse_args()

    rows: list[str] = []
    throttle_rows: list[str] = []
    worker_rows: list[str] = []
    peers: dict[str, Peer] = {"smpp": smpp_peer(), "cmpp": cmpp_peer(), "cmpp2": cmpp_peer(max_version=0x20),
                              "smgp": smgp_peer(), "sgip": sgip_peer()}
    with contextlib.ExitStack() as stack:
        for peer in peers.values():
            stack.enter_context(peer).start()
        SP_PORTS["sgip"] = peers["sgip"].sp_port
        ports = {"loopback": 0, **{kind: peer.port for kind, peer in peers.items()}}
        for kind in ADAPTERS:
            sub, full = asyncio.run(adapter_throughput(kind, ports[kind], args.messages, args.window))
            rows.append(f"| {kind} | {args.messages} | {args.window} | {sub:,.0f} | {full:,.0f} |")
            print(rows[-1], flush=True)
        for kind in ("smpp", "cmpp", "smgp", "sgip"):
            got = asyncio.run(throttled(kind, ports[kind], args.redis, args.rate, args.seconds, args.window))
            err = (got - args.rate) / args.rate * 100
            throttle_rows.append(f"| {kind} | {args.rate:,.0f} | {got:,.1f} | {err:+.2f}% |")
            print(throttle_rows[-1], flush=True)
        for kind in ADAPTERS:
            got = asyncio.run(worker_path(kind, ports[kind], args.redis, args.worker_messages, args.window))
            worker_rows.append(f"| {kind} | {args.worker_messages} | {got:,.0f} |")
            print(worker_rows[-1], flush=True)

    server_rate = asyncio.run(cmpp_server_rate(args.messages, args.window))
    print(f"cmpp server: {server_rate:,.0f} submits/s", flush=True)

    cpu = platform.processor() or platform.machine()
    load = os.getloadavg()[0]
    text = f"""# Gateway benchmark

`{' '.join(['.venv/bin/python', 'bench/gateways.py', *sys.argv[1:]])}` on {os.cpu_count()} cores ({cpu}),
Python {platform.python_version()}, peers on 127.0.0.1 as separate processes (SMPP: npm `smpp` 0.5.1
SMSC on Node {os.popen('node --version').read().strip()}; CMPP 3.0 / 2.0, SMGP 3.0, SGIP 1.2: the simulators in
`tests/sending/sending_peers`; `cmpp2` is our client falling back to 2.0 against a 2.0-only ISMG). The client, the
peer and Redis share the same 2 cores (1-minute load average at the end of the run: {load:.2f}; other
work on the machine makes figures vary run to run). UCS-2 Chinese text, one part per message, a receipt
per message.

## (a) Adapter throughput

Timed from the first submit until every response (`submit`) and every delivery receipt (`+ receipts`).

| gateway | messages | window | msgs/s (submit) | msgs/s (+ receipts) |
| --- | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

## (b) Throttle accuracy (Redis GCRA, limit below capacity)

| gateway | limit msgs/s | measured msgs/s | error |
| --- | ---: | ---: | ---: |
{chr(10).join(throttle_rows)}

## (c) Whole worker path

Redis outbox → route → submit → id map (Lua) → receipt mapped (Lua) → final state, one worker process.

| gateway | messages | msgs/s to final state |
| --- | ---: | ---: |
{chr(10).join(worker_rows)}

## (d) Customer-facing CMPP server, protocol only

Our CMPP 3.0 client → `CmppServer` (accept-all handler, same process), window {args.window}, {args.messages} SUBMITs:
**{server_rate:,.0f} submits/s** answered. Screening and the outbox are not in this path yet.
"""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
