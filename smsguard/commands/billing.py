"""``smsguard billing …``: the prepaid ledger, for the operator.

* ``topup --tenant T AMOUNT [--reference R] [--memo M]``: credit a tenant (opens its prepaid account);
  the same ``--reference`` twice tops up once.
* ``adjust --tenant T AMOUNT --memo M``: a correction in (+) or out (−) of the available balance.
* ``balance --tenant T`` · ``statement --tenant T [--since ISO] [--until ISO] [--after ID] [--limit N]``.
* ``price (--tenant T | --default) --carrier C [--kind K|*] AMOUNT|none``: one price per segment of a list.
* ``prices --tenant T``: the prices that tenant's batches are estimated and held at.
* ``settings --tenant T [--low-balance AMOUNT|none] [--charge-on handover|delivery]``.
* ``reconcile``: settle open holds against what their batches did (the release role does it every minute).
* ``verify [--tenant T]``: recompute the ledger's invariants from its entries; exit 1 if one fails.
"""

from __future__ import annotations

import argparse
import json

from .batch import _actor, _ctx, _print, _tenant, iso_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("billing", help="prepaid balances: top-ups, statements, price lists, reconciliation")
    bsub = p.add_subparsers(dest="billing_command", required=True, metavar="ACTION")

    t = bsub.add_parser("topup", help="credit a tenant's prepaid balance")
    t.add_argument("amount", help="in the policy's currency, e.g. 100 or 99.5")
    t.add_argument("--tenant", required=True)
    t.add_argument("--reference", help="the payment's id: the same one twice tops up once")
    t.add_argument("--memo")
    t.set_defaults(handler=run_topup)

    a = bsub.add_parser("adjust", help="a correction in (+) or out (-) of the available balance")
    a.add_argument("amount", help="e.g. 5 or -2.5")
    a.add_argument("--tenant", required=True)
    a.add_argument("--memo", required=True, help="why")
    a.set_defaults(handler=run_adjust)

    b = bsub.add_parser("balance", help="balance, held and available")
    b.add_argument("--tenant", required=True)
    b.set_defaults(handler=run_balance)

    s = bsub.add_parser("statement", help="the ledger's entries, oldest first")
    s.add_argument("--tenant", required=True)
    s.add_argument("--since", type=iso_time)
    s.add_argument("--until", type=iso_time)
    s.add_argument("--after", type=int, default=0, help="the last entry id of the previous page")
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(handler=run_statement)

    pr = bsub.add_parser("price", help="set (or with `none` remove) one price per segment")
    who = pr.add_mutually_exclusive_group(required=True)
    who.add_argument("--tenant")
    who.add_argument("--default", action="store_true", help="the default price list (every tenant)")
    pr.add_argument("--carrier", required=True, choices=("mobile", "unicom", "telecom", "broadnet", "virtual", "other"))
    pr.add_argument("--kind", default="*", choices=("verification", "notification", "marketing", "*"))
    pr.add_argument("amount", help="in the policy's currency, or `none`")
    pr.set_defaults(handler=run_price)

    ps = bsub.add_parser("prices", help="the prices a tenant's batches are estimated and held at")
    ps.add_argument("--tenant", required=True)
    ps.set_defaults(handler=run_prices)

    st = bsub.add_parser("settings", help="low-balance threshold and when messages are charged")
    st.add_argument("--tenant", required=True)
    st.add_argument("--low-balance", help="alert when available drops below this (`none`: no alert)")
    st.add_argument("--charge-on", choices=("handover", "delivery"))
    st.set_defaults(handler=run_settings)

    r = bsub.add_parser("reconcile", help="settle open holds against what their batches did")
    r.set_defaults(handler=run_reconcile)

    v = bsub.add_parser("verify", help="check the ledger's invariants (exit 1 if one fails)")
    v.add_argument("--tenant", help="one tenant (default: every prepaid tenant)")
    v.set_defaults(handler=run_verify)


def _run(fn) -> int:
    ctx, loc = _ctx()
    try:
        return fn(ctx) or 0
    finally:
        loc.close()


def run_topup(args: argparse.Namespace) -> int:
    from smsguard import billing

    amount = billing.to_micros(args.amount, where="amount")
    return _run(lambda ctx: _print(billing.top_up(ctx.db, _tenant(ctx, args.tenant), amount, actor=_actor(),
                                                  reference=args.reference, memo=args.memo)))


def run_adjust(args: argparse.Namespace) -> int:
    from smsguard import billing

    amount = billing.to_micros(args.amount, where="amount", signed=True)
    return _run(lambda ctx: _print(billing.adjust(ctx.db, _tenant(ctx, args.tenant), amount, actor=_actor(),
                                                  memo=args.memo)))


def run_balance(args: argparse.Namespace) -> int:
    from smsguard import billing

    return _run(lambda ctx: _print(billing.get_balance(ctx.db, _tenant(ctx, args.tenant),
                                                       currency=ctx.policy.prices.currency)))


def run_statement(args: argparse.Namespace) -> int:
    from smsguard import billing

    return _run(lambda ctx: _print(billing.statement(
        ctx.db, _tenant(ctx, args.tenant), since=args.since, until=args.until, after=args.after, limit=args.limit,
        currency=ctx.policy.prices.currency)))


def run_price(args: argparse.Namespace) -> int:
    from smsguard import billing

    price = None if args.amount.lower() == "none" else billing.to_micros(args.amount, where="amount")

    def go(ctx) -> None:
        tenant = billing.DEFAULT if args.default else _tenant(ctx, args.tenant)
        _print(billing.set_price(ctx.db, tenant, args.carrier, args.kind, price, actor=_actor()))

    return _run(go)


def run_prices(args: argparse.Namespace) -> int:
    from smsguard import batches, billing

    return _run(lambda ctx: _print(billing.list_prices(ctx.db, _tenant(ctx, args.tenant), batches.policy_prices(ctx),
                                                       currency=ctx.policy.prices.currency)))


def run_settings(args: argparse.Namespace) -> int:
    from smsguard import billing

    kw: dict = {"charge_on": args.charge_on}
    if args.low_balance is not None:
        kw["low_balance"] = None if args.low_balance.lower() == "none" else billing.to_micros(
            args.low_balance, where="--low-balance")
    return _run(lambda ctx: _print(billing.set_settings(ctx.db, _tenant(ctx, args.tenant), actor=_actor(), **kw)))


def run_reconcile(args: argparse.Namespace) -> int:
    from smsguard import batches

    return _run(lambda ctx: _print(batches.reconcile_billing(ctx, actor=_actor())))


def run_verify(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from smsguard import billing
    from smsguard.billing import metadata

    def go(ctx) -> int:
        if args.tenant:
            tenants = [_tenant(ctx, args.tenant)]
        else:
            accounts = metadata.tables["billing_accounts"]
            with ctx.db.connect() as conn:
                tenants = list(conn.execute(select(accounts.c.tenant_id).order_by(accounts.c.tenant_id)).scalars())
        failed = 0
        for t in tenants:
            report = billing.verify(ctx.db, t)
            failed += not report["ok"]
            print(json.dumps({"tenant_id": t, **report}, ensure_ascii=False))
        return 1 if failed else 0

    return _run(go)
