"""``smsguard policy check [FILE]``: validate a policy file and report the first error by key path."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import RULE_CODES, default_config, load_policy


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="policy.yaml tools")
    psub = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = psub.add_parser("check", help="validate policy.yaml (default: the one the engine uses)")
    check.add_argument("file", nargs="?", type=Path)
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    path = args.file or default_config().policy_path
    policy, version = load_policy(path, known_rules=frozenset(RULE_CODES))
    print(
        f"{path}: ok (version {version}, {len(policy.categories)} categories, {len(policy.rules)} rules, "
        f"{len(policy.tenants)} tenants)"
    )
    return 0
