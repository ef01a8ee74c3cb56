"""``smsguard pumping allow|block|list|lift``: the anti-pumping allow-lists and blocks (rows in SQL).

A subject is ``number 13800138000``, ``prefix 1380013`` (the first 7 digits), ``tenant ID`` or ``ip ADDR``;
numbers and prefixes are stored and looked up by keyed hash and shown masked. Every change is an audit
event (actor ``cli:<os user>``). ``lift`` also forgets the subject's strikes (and a prefix's conversion counts),
so a lifted prefix starts afresh.
"""

from __future__ import annotations

import argparse
import getpass
import json

SCOPES = ("number", "prefix", "tenant", "ip")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pumping", help="anti-pumping allow-lists and blocks")
    psub = p.add_subparsers(dest="pumping_command", required=True, metavar="ACTION")
    for action, text in (("allow", "allow-list a subject: its pumping checks and automatic blocks are skipped"),
                         ("block", "block a subject (429 pumping.blocked) until lifted, or for --seconds")):
        a = psub.add_parser(action, help=text)
        a.add_argument("scope", choices=SCOPES)
        a.add_argument("value", help="the number, the 7-digit prefix, the tenant id or the IP address")
        a.add_argument("--note", default=None, help="why (kept with the rule and in its audit event)")
        a.add_argument("--seconds", type=int, default=None, help="expire after this many seconds")
        a.set_defaults(handler=run_add, action=action)
    lst = psub.add_parser("list", help="the rules in force (allow-list entries and blocks)")
    lst.add_argument("--scope", choices=SCOPES, default=None)
    lst.add_argument("--action", choices=("allow", "block"), default=None)
    lst.add_argument("--all", action="store_true", help="include lifted and expired rules")
    lst.add_argument("--json", action="store_true", help="one JSON object a line")
    lst.set_defaults(handler=run_list)
    lift = psub.add_parser("lift", help="lift the blocks on a subject (or one rule by --id)")
    lift.add_argument("scope", nargs="?", choices=SCOPES)
    lift.add_argument("value", nargs="?")
    lift.add_argument("--id", type=int, default=None, help="the rule id (`smsguard pumping list`)")
    lift.add_argument("--allow-too", action="store_true", help="also remove the subject's allow-list entries")
    lift.set_defaults(handler=run_lift)


def _guard():
    from smsguard.core import get_settings
    from smsguard.pumping import PumpingGuard
    from smsguard.runtime import Runtime

    rt = Runtime(get_settings()).open()
    return rt, PumpingGuard(db=rt.db, redis=rt.redis, vault=rt.vault, settings=rt.settings)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _line(rule) -> str:
    until = rule.expires_at.isoformat(timespec="seconds") if rule.expires_at else "until lifted"
    state = "lifted" if rule.lifted_at else until
    fields = (rule.id, rule.action, rule.scope, rule.label, rule.code, rule.source, state, rule.note or "")
    return "\t".join(str(f) for f in fields)


def run_add(args: argparse.Namespace) -> int:
    from smsguard.core import InputError

    if args.seconds is not None and args.seconds < 1:
        raise InputError("must be at least 1", where="--seconds", code="input.seconds")
    rt, guard = _guard()
    try:
        fn = guard.allow if args.action == "allow" else guard.block
        rule = fn(args.scope, args.value, actor=_actor(), note=args.note, seconds=args.seconds)
        print(_line(rule))
    finally:
        rt.close()
    return 0


def run_list(args: argparse.Namespace) -> int:
    rt, guard = _guard()
    try:
        for rule in guard.rules(scope=args.scope, action=args.action, include_lifted=args.all):
            print(json.dumps(rule.to_dict(), ensure_ascii=False) if args.json else _line(rule))
    finally:
        rt.close()
    return 0


def run_lift(args: argparse.Namespace) -> int:
    from smsguard.core import InputError

    if args.id is None and (args.scope is None or args.value is None):
        raise InputError("give SCOPE VALUE or --id", where="arguments", code="cli.usage")
    rt, guard = _guard()
    try:
        for rule in guard.lift(args.scope, args.value, rule_id=args.id, actor=_actor(), allow_too=args.allow_too):
            print(_line(rule))
    finally:
        rt.close()
    return 0
