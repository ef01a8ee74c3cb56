"""Gateway throughput and throttle accuracy against local peers (all on 127.0.0.1).

Run: ``.venv/bin/python bench/gateways.py [--messages 20000] [--window 64] [--rate 1000]``; writes
``bench/results/gateways.md``. Peers are real separate processes: the npm ``smpp`` SMSC
(tests/sending/smpp_peer) and our CMPP ISMG simulator. Figures:

(a) adapter throughput: ``--messages`` concurrent submits (bounded by ``--window``) from one asyncio
    process, timed from the first submit until every submit response AND every delivery receipt is in,
    for loopback (baseline, no I/O), SMPP and CMPP;
(b) throttle accuracy: the same adapters behind a Redis GCRA throttle set to ``--rate`` msgs/s (below
    their capacity), for ``--seconds``; measured rate vs the limit;
(c) the whole worker path (Redis outbox → route → throttle → submit → id map → receipt → final state
    in Redis), unthrottled, ``--worker-messages`` messages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from sending import (  # noqa: E402
    Channel,
    CmppGateway,
    Gateway,
    GatewayWorker,
    LoopbackGateway,
    MemoryEvents,
    MessageStore,
    OutboundMessage,
    RedisThrottle,
    Router,
    SmppGateway,
    redis_client,
)
from sending._peers import CMPP_ACCOUNT, SMPP_ACCOUNT, cmpp_peer, smpp_peer  # noqa: E402

TEXT = "【示例银行】您的验证码是{:06d}，5分钟内有效。"


def make(kind: str, port: int, window: int) -> Gateway:
    if kind == "smpp":
        return SmppGateway("smpp", "127.0.0.1", port, *SMPP_ACCOUNT, window=window)
    if kind == "cmpp":
        return CmppGateway("cmpp", "127.0.0.1", port, *CMPP_ACCOUNT, window=window)
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
    with smpp_peer() as sp, cmpp_peer() as cp:
        sp.start()
        cp.start()
        ports = {"loopback": 0, "smpp": sp.port, "cmpp": cp.port}
        for kind in ("loopback", "smpp", "cmpp"):
            sub, full = asyncio.run(adapter_throughput(kind, ports[kind], args.messages, args.window))
            rows.append(f"| {kind} | {args.messages} | {args.window} | {sub:,.0f} | {full:,.0f} |")
            print(rows[-1], flush=True)
        for kind in ("smpp", "cmpp"):
            got = asyncio.run(throttled(kind, ports[kind], args.redis, args.rate, args.seconds, args.window))
            err = (got - args.rate) / args.rate * 100
            throttle_rows.append(f"| {kind} | {args.rate:,.0f} | {got:,.1f} | {err:+.2f}% |")
            print(throttle_rows[-1], flush=True)
        for kind in ("loopback", "smpp", "cmpp"):
            got = asyncio.run(worker_path(kind, ports[kind], args.redis, args.worker_messages, args.window))
            worker_rows.append(f"| {kind} | {args.worker_messages} | {got:,.0f} |")
            print(worker_rows[-1], flush=True)

    cpu = platform.processor() or platform.machine()
    load = os.getloadavg()[0]
    text = f"""# Gateway benchmark

`{' '.join(['.venv/bin/python', 'bench/gateways.py', *sys.argv[1:]])}` on {os.cpu_count()} cores ({cpu}),
Python {platform.python_version()}, peers on 127.0.0.1 as separate processes (SMPP: npm `smpp` 0.5.1
SMSC on Node {os.popen('node --version').read().strip()}; CMPP: `sending._cmpp_simulator`). The client, the
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
"""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
