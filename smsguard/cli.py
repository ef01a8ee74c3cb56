"""``smsguard``: one console script in front of everything.

Each sub-command lives in its own module under ``smsguard.commands`` and registers itself with
``register(subparsers)``; the handler returns the process exit code. An ordinary mistake (an error of this
project, a bad argument, a file that cannot be read, PostgreSQL or Redis down) prints one line,
``smsguard: where: message [code]``, on stderr and exits 2: never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from smsguard.core import SmsguardError

from .commands import COMMANDS

EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line with a code like every other error (not usage + message)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("smsguard").strip() or "arguments"
        print(f"smsguard: {where}: {message} (see {self.prog} --help) [cli.usage]", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


def _version() -> str:
    try:
        return version("smsguard")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="smsguard", description="Moderation-first bulk-SMS screening.")
    parser.add_argument("--version", action="version", version=f"smsguard {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def ordinary_error(e: BaseException) -> SmsguardError | None:
    """``e`` as the project error a user should see in one line, or None for a bug (which keeps its traceback)."""
    if isinstance(e, SmsguardError):
        return e
    if isinstance(e, OSError) and e.filename is not None:  # a file named on the command line or in a setting
        code = "file.not_found" if isinstance(e, FileNotFoundError) else "file.unreadable"
        return SmsguardError(e.strerror or str(e), where=str(e.filename), code=code)
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")  # only imported if a command used SQL at all
    if sqlalchemy_exc is not None and isinstance(e, sqlalchemy_exc.OperationalError):
        first = str(e.orig or e).strip().splitlines()[0]
        return SmsguardError(f"cannot reach the database: {first}", where="DATABASE_URL", code="unavailable.database")
    redis_exc = sys.modules.get("redis.exceptions")
    if redis_exc is not None and isinstance(e, redis_exc.ConnectionError | redis_exc.TimeoutError):
        return SmsguardError(f"cannot reach Redis: {e}", where="REDIS_URL", code="unavailable.redis")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:  # `smsguard screen … | head` is fine
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        error = ordinary_error(e)
        if error is None:
            raise
        print(f"smsguard: {error}", file=sys.stderr)
        return EXIT_ERROR
