"""``smsguard batch …``: templates, contact imports, batches, the release worker and the event relay.

* ``import-contacts FILE --tenant T [--name N]``: stream a CSV (UTF-8 or GBK) into a contact list;
  prints the summary and the first rejected lines.
* ``template --tenant T --name N --kind K --signature S --body B``: create a template (screened now).
* ``create --tenant T (--template ID --list ID | --content TEXT --numbers FILE) [--schedule-at ISO] [--draft]``.
* ``show ID --tenant T`` · ``report ID --tenant T`` (CSV) · ``cancel ID --tenant T``.
* ``budget --tenant T LIMIT|none``: set or remove a tenant's budget.
* ``worker [--chunk N] [--lease S] [--until-idle]``: the release worker (rebuilds Redis opt-out sets and
  caps from SQL first).
* ``relay``: the gateway event relay into SQL (delivery reports, MO opt-outs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="templates, contacts, batches, release worker")
    bsub = p.add_subparsers(dest="batch_command", required=True, metavar="ACTION")

    imp = bsub.add_parser("import-contacts", help="import a CSV contact list (UTF-8 or GBK)")
    imp.add_argument("file")
    imp.add_argument("--tenant", required=True)
    imp.add_argument("--name", default=None)
    imp.set_defaults(handler=run_import)

    tpl = bsub.add_parser("template", help="create a template (screened at creation)")
    tpl.add_argument("--tenant", required=True)
    tpl.add_argument("--name", required=True)
    tpl.add_argument("--kind", required=True, choices=("verification", "notification", "marketing"))
    tpl.add_argument("--signature", required=True)
    tpl.add_argument("--body", required=True, help="text with ${variable} slots")
    tpl.set_defaults(handler=run_template)

    create = bsub.add_parser("create", help="create and submit a batch")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--template", type=int)
    create.add_argument("--list", type=int)
    create.add_argument("--content")
    create.add_argument("--numbers", help="file with one number a line (content batches)")
    create.add_argument("--kind", choices=("verification", "notification", "marketing"))
    create.add_argument("--signature")
    create.add_argument("--schedule-at", type=iso_time, help="ISO 8601 with offset, e.g. 2026-11-26T09:00:00+08:00")
    create.add_argument("--draft", action="store_true")
    create.set_defaults(handler=run_create)

    for name, fn, text in (("show", run_show, "a batch as JSON"), ("report", run_report, "per-recipient CSV"),
                           ("cancel", run_cancel, "cancel a batch not yet releasing")):
        q = bsub.add_parser(name, help=text)
        q.add_argument("batch_id", type=int)
        q.add_argument("--tenant", required=True)
        q.set_defaults(handler=fn)

    bud = bsub.add_parser("budget", help="set (or with 'none' remove) a tenant's budget")
    bud.add_argument("limit", type=budget_limit, help="amount in the policy's currency, or `none`")
    bud.add_argument("--tenant", required=True)
    bud.set_defaults(handler=run_budget)

    w = bsub.add_parser("worker", help="run the release worker")
    w.add_argument("--chunk", type=int, default=5000, help="recipients per SQL chunk")
    w.add_argument("--lease", type=float, default=15.0, help="seconds a batch stays leased without progress")
    w.add_argument("--pause", type=float, default=0.0, help="seconds to sleep between chunks (throttling, tests)")
    w.add_argument("--until-idle", action="store_true", help="exit when nothing is due")
    w.set_defaults(handler=run_worker)

    r = bsub.add_parser("relay", help="run the gateway event relay into SQL")
    r.add_argument("--consumer", default="relay-1")
    r.set_defaults(handler=run_relay)


def iso_time(value: str) -> datetime:
    """An ISO 8601 date/time (argparse type: a bad one is a one-line usage error)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date/time: {value!r} (e.g. 2026-11-26T09:00:00+08:00)"
        ) from None


def budget_limit(value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        limit = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an amount: {value!r} (a number, or none)") from None
    if not limit >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value!r}")
    return limit


def _ctx():
    from smsguard.core import get_settings
    from smsguard.runtime import Runtime

    runtime = Runtime(get_settings()).open()
    return runtime.batch_context(), runtime


def _tenant(ctx, name: str) -> int:
    from smsguard.batches._common import tenant_id_of

    with ctx.db.connect() as conn:
        return tenant_id_of(conn, name)


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _print(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def run_import(args: argparse.Namespace) -> int:
    from smsguard.batches import import_contacts

    ctx, loc = _ctx()
    try:
        with open(args.file, "rb") as f:
            _print(import_contacts(ctx, _tenant(ctx, args.tenant), args.name or os.path.basename(args.file), f,
                                   actor=_actor(), max_errors_shown=20))
    finally:
        loc.close()
    return 0


def run_template(args: argparse.Namespace) -> int:
    from smsguard.batches import create_template

    ctx, loc = _ctx()
    try:
        _print(create_template(ctx, _tenant(ctx, args.tenant), name=args.name, kind=args.kind,
                               signature=args.signature, body=args.body, actor=_actor()))
    finally:
        loc.close()
    return 0


def _numbers(path: str):
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                yield line.strip()


def run_create(args: argparse.Namespace) -> int:
    from smsguard.batches import create_batch

    ctx, loc = _ctx()
    try:
        at = args.schedule_at
        _print(create_batch(ctx, _tenant(ctx, args.tenant), name=args.name, template_id=args.template,
                            list_id=args.list, content=args.content,
                            numbers=_numbers(args.numbers) if args.numbers else None, kind=args.kind,
                            signature=args.signature, schedule_at=at, draft=args.draft, actor=_actor()))
    finally:
        loc.close()
    return 0


def run_show(args: argparse.Namespace) -> int:
    from smsguard.batches import get_batch

    ctx, loc = _ctx()
    try:
        _print(get_batch(ctx, _tenant(ctx, args.tenant), args.batch_id))
    finally:
        loc.close()
    return 0


def run_report(args: argparse.Namespace) -> int:
    from smsguard.batches import report_csv

    ctx, loc = _ctx()
    try:
        for part in report_csv(ctx, _tenant(ctx, args.tenant), args.batch_id):
            sys.stdout.write(part)
    finally:
        loc.close()
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from smsguard.batches import cancel_batch

    ctx, loc = _ctx()
    try:
        _print(cancel_batch(ctx, _tenant(ctx, args.tenant), args.batch_id, actor=_actor()))
    finally:
        loc.close()
    return 0


def run_budget(args: argparse.Namespace) -> int:
    from smsguard.batches import set_budget

    ctx, loc = _ctx()
    try:
        _print(set_budget(ctx, _tenant(ctx, args.tenant), args.limit, actor=_actor()))
    finally:
        loc.close()
    return 0


def run_worker(args: argparse.Namespace) -> int:
    from smsguard.batches import ReleaseWorker

    ctx, loc = _ctx()
    worker = ReleaseWorker(ctx, chunk=args.chunk, lease=args.lease, pause=args.pause,
                           crash_after_chunks=loc.settings.release_crash_after_chunks)  # tests: die mid-hand-over
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        rebuilt = worker.prepare()
        print(f"READY {worker.worker_id} {json.dumps(rebuilt)}", flush=True)
        worker.run(stop, until_idle=args.until_idle)
        print(json.dumps(worker.stats), flush=True)
    finally:
        loc.close()
    return 0


def run_relay(args: argparse.Namespace) -> int:
    import asyncio

    from smsguard.batches import SqlEventSink
    from smsguard.sending import EventRelay, MessageStore, VaultPhones, redis_client

    ctx, loc = _ctx()

    async def main() -> None:
        store = MessageStore(redis_client(loc.redis_url), namespace=ctx.send_namespace, seal=VaultPhones(ctx.vault))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print("READY relay", flush=True)
        await EventRelay(store, SqlEventSink(ctx), consumer=args.consumer).run(stop)

    try:
        asyncio.run(main())
    finally:
        loc.close()
    return 0
