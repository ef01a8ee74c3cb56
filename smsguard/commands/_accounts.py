"""What the ``user`` actions of reviewer and console accounts share on the command line: reading a new password,
``list`` and ``passwd``. ``create`` stays with each kind of account (a console account needs a tenant)."""

from __future__ import annotations

import argparse
import getpass
import importlib
import sys
from functools import partial

from smsguard.core import SmsguardError

from .tenant import open_db


def read_password(args: argparse.Namespace) -> str:
    """One line from stdin with ``--password-stdin`` (scripts), else typed twice without echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():  # getpass would read a pipe or wait forever on nothing
        raise SmsguardError("no terminal to ask for a password: pass it on stdin with --password-stdin",
                            where="password", code="cli.no_terminal")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SmsguardError("the passwords differ", where="password", code="user.password")
    return first


def add_list_and_passwd(
    actions: argparse._SubParsersAction, users: str, *, kind: str, one: str, columns: tuple[tuple[str, str], ...]
) -> None:
    """``list`` (one line per account: the name, then ``label=value`` of each ``(label, attribute)`` in
    ``columns``) and ``passwd`` on the accounts of ``users``, a module with ``list_users`` and ``set_password``
    (imported when the action runs, so ``smsguard --help`` stays fast). ``kind`` and ``one`` name the accounts
    in the help: "list {kind} accounts", "set {one}'s password"."""
    lst = actions.add_parser("list", help=f"list {kind} accounts")
    lst.set_defaults(handler=partial(_run_list, users, columns))
    passwd = actions.add_parser("passwd", help=f"set {one}'s password")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(handler=partial(_run_passwd, users))


def _run_list(users: str, columns: tuple[tuple[str, str], ...], args: argparse.Namespace) -> int:
    for user, disabled in importlib.import_module(users).list_users(open_db()):
        fields = "".join(f"\t{label}={getattr(user, attr)}" for label, attr in columns)
        state = "\tdisabled" if disabled else ""
        print(f"{user.username}{fields}{state}")
    return 0


def _run_passwd(users: str, args: argparse.Namespace) -> int:
    importlib.import_module(users).set_password(open_db(), args.username, read_password(args))
    print(f"password of {args.username} changed")
    return 0


def add_locks_and_unlock(actions: argparse._SubParsersAction, realm: str) -> None:
    """``locks`` (the accounts and client addresses locked after too many failed log-ins to the UI ``realm``) and
    ``unlock NAME`` / ``unlock --address IP`` (lifts a lock, with a ``login.unlocked`` audit event)."""
    lst = actions.add_parser("locks", help="accounts and addresses locked after too many failed log-ins")
    lst.set_defaults(handler=partial(_run_locks, realm))
    unlock = actions.add_parser("unlock", help="lift a log-in lock of an account (or --address) and its count")
    target = unlock.add_mutually_exclusive_group(required=True)
    target.add_argument("username", nargs="?")
    target.add_argument("--address", help="a client address instead of an account")
    unlock.set_defaults(handler=partial(_run_unlock, realm))


def _run_locks(realm: str, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from smsguard.webauth import throttle

    for lock in throttle.locks(open_db(), realm):
        kind, _, name = lock.key.removeprefix(f"{realm}:").partition(":")
        at = datetime.fromtimestamp(lock.locked_at, UTC).isoformat(timespec="seconds")
        print(f"{kind}\t{name}\tfailures={lock.failures}\tlocked_at={at}")
    return 0


def _run_unlock(realm: str, args: argparse.Namespace) -> int:
    from smsguard.webauth import throttle

    key = throttle.address_key(realm, args.address) if args.address else throttle.account_key(realm, args.username)
    if not throttle.unlock(open_db(), key, actor=f"cli:{_user()}"):
        raise SmsguardError(f"{args.address or args.username} is not locked", where="username",
                            code="login.not_locked")
    print(f"{args.address or args.username} unlocked")
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name (containers): the audit event still says it came from the CLI
        return "unknown"
