"""Reading a new account password on the command line (reviewer and console accounts alike)."""

from __future__ import annotations

import argparse
import getpass
import sys

from engine import SmsguardError


def read_password(args: argparse.Namespace) -> str:
    """One line from stdin with ``--password-stdin`` (scripts), else typed twice without echo."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SmsguardError("the passwords differ", where="password", code="user.password")
    return first
