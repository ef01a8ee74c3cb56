"""``smsguard``: one console script in front of everything.

Each sub-command lives in its own module under ``smsguard.commands`` and registers itself with
``register(subparsers)``; the handler returns the process exit code. Errors of this project
print as ``where: message [code]`` on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine import SmsguardError

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsguard", description="Moderation-first bulk-SMS screening.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SmsguardError as e:
        print(f"smsguard: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `smsguard screen … | head` is fine
        return 0
