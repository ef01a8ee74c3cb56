"""``smsguard channel …``: the carrier channels of ``SMSGUARD_CHANNELS`` (default: one loopback channel).

* ``check [--timeout S] [--json]``: connect, bind (log in) and unbind every channel; one line per channel, exit 1
  when any failed.
* ``list [--json]``: each channel's state as the running gateway processes report it (connected on how many
  processes, circuit, throughput now, rate limit), receipts outstanding, and the outbox queue depth.
* ``reconcile [--older-than S] [--tenant T] [--limit N] [--json]``: every recipient handed to a gateway that
  has no final state yet, oldest first, with its age, channel and send state.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("channel", help="carrier channels: check, list, reconcile")
    csub = p.add_subparsers(dest="channel_command", required=True, metavar="ACTION")
    check = csub.add_parser("check", help="connect, bind and unbind each configured channel")
    check.add_argument("--timeout", type=float, default=10.0, help="seconds per channel (default 10)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=run_check)
    lst = csub.add_parser("list", help="state, throughput, queue depth and circuit of each channel")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=run_list)
    rec = csub.add_parser("reconcile", help="submitted recipients without a final state, and their age")
    rec.add_argument("--older-than", type=float, default=0.0, help="only those submitted at least S seconds ago")
    rec.add_argument("--tenant", default=None)
    rec.add_argument("--limit", type=int, default=100)
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(handler=run_reconcile)


def _specs():
    from smsguard.core import get_settings
    from smsguard.sending._channels import load_channels

    settings = get_settings()
    name = settings.channels_file.name if settings.channels_file else "channels.yaml"
    return load_channels(settings.channels_file), name


def run_check(args: argparse.Namespace) -> int:
    import asyncio

    from smsguard.sending._gateway_role import check_channel

    specs, name = _specs()

    async def main() -> list[dict]:
        return list(await asyncio.gather(*(
            check_channel(s, index=i, file_name=name, timeout=args.timeout) for i, s in enumerate(specs)
        )))

    rows = asyncio.run(main())
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for r in rows:
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['channel']:<16} {r['protocol']:<9} {r['target']:<28} "
                  f"{r['seconds']:>6.2f}s  {r['detail']}")
    return 0 if all(r["ok"] for r in rows) else 1


def _with_context(fn, *, migrate_db: bool = True):
    """``fn(ctx)`` on a batches Context of this deployment's settings, closed afterwards."""
    from smsguard.core import get_settings
    from smsguard.runtime import Runtime

    loc = Runtime(get_settings()).open(migrate_db=migrate_db)
    ctx = loc.batch_context()
    try:
        return fn(ctx)
    finally:
        loc.close()


def run_list(args: argparse.Namespace) -> int:
    from smsguard.sending._gateway_role import channel_table

    specs, _ = _specs()
    table = _with_context(lambda ctx: channel_table(ctx.redis, ctx.send_namespace, specs), migrate_db=False)
    if args.json:
        print(json.dumps(table, ensure_ascii=False, indent=2))
        return 0
    print(f"gateway processes alive: {table['gateways']}   outbox queue depth: {table['outbox']}")
    print(f"{'channel':<16} {'protocol':<9} {'state':<11} {'procs':<6} {'circuit':<10} {'msg/s':>8} "
          f"{'limit':>7} {'awaiting receipt':>17}")
    for r in table["channels"]:
        print(f"{r['channel']:<16} {r['protocol']:<9} {r['state']:<11} {r['processes']:<6} {r['circuit']:<10} "
              f"{r['throughput']:>8} {r['rate_limit'] or '-':>7} {r['outstanding_receipts']:>17}")
    return 0


def run_reconcile(args: argparse.Namespace) -> int:
    from smsguard.batches._common import tenant_id_of
    from smsguard.batches._settle import reconciliation

    def view_of(ctx):
        tid = None
        if args.tenant:
            with ctx.db.connect() as conn:
                tid = tenant_id_of(conn, args.tenant)
        return reconciliation(ctx, tenant_id=tid, older_than=args.older_than, limit=args.limit)

    view = _with_context(view_of)
    if args.json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
        return 0
    print(f"{view['total']} submitted recipient(s) without a final state")
    for r in view["items"]:
        print(f"batch {r['batch_id']:>6} #{r['seq']:<7} {r['phone']:<14} {r['channel'] or '-':<14} "
              f"{r['send_state'] or '-':<10} parts {r['parts_reported']}/{r['parts'] or '?':<3} "
              f"age {r['age_seconds']} s")
    sys.stdout.flush()
    return 0
