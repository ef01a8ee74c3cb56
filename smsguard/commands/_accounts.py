"""What the ``user`` actions of reviewer and console accounts share on the command line: reading a new password,
``list`` and ``passwd``. ``create`` stays with each kind of account (a console account needs a tenant)."""

from __future__ import annotations

import argparse
import getpass
import importlib
import sys
from functools import partial

from engine import SmsguardError

from .tenant import open_db


def read_password(args: argparse.Namespace) -> str:
    """One line from stdin with ``--password-stdin`` (scripts), else typed twice without echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
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
