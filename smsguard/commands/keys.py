"""``smsguard keys``: the deployment's shared secrets (``smsguard key`` is about API keys).

* ``keys init DIR`` writes the four secret files (phone encryption key, phone hash key, web session secret,
  audit signing key), 0600, into DIR; point every host at the same copy with ``SMSGUARD_SECRETS_DIR=DIR``.
  Files already there are kept.
* ``keys check`` loads the secrets the settings name and reports where each came from, or the error.
* ``keys add-phone-key FILE`` puts a new phone encryption key first in FILE (a ``SMSGUARD_PHONE_KEY_FILE`` or
  ``<secrets dir>/phone.key``), keeping the old ones after it to decrypt.
* ``keys rotate [--chunk N]`` re-encrypts every stored number under the first key, a chunk per transaction;
  safe to interrupt and run again. When it reports nothing left under other keys, drop the old key.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="the deployment's shared secrets (phone keys, session secret, audit key)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="write the four secret files into DIR (kept if present)")
    init.add_argument("dir", type=Path)
    init.set_defaults(handler=run_init)
    check = actions.add_parser("check", help="load the configured secrets (exit 2 naming what is missing)")
    check.set_defaults(handler=run_check)
    add = actions.add_parser("add-phone-key", help="put a new phone key first in FILE (old keys kept to decrypt)")
    add.add_argument("file", type=Path)
    add.set_defaults(handler=run_add_phone_key)
    rotate = actions.add_parser("rotate", help="re-encrypt every stored number under the first phone key")
    rotate.add_argument("--chunk", type=int, default=2000, help="rows per transaction")
    rotate.set_defaults(handler=run_rotate)


def run_init(args: argparse.Namespace) -> int:
    from smsguard.core import generate_secrets

    written = generate_secrets(args.dir)
    for path in written:
        print(f"wrote {path}")
    kept = 4 - len(written)
    if kept:
        print(f"kept {kept} existing file(s) in {args.dir}")
    print(f"\n  export SMSGUARD_SECRETS_DIR={args.dir.resolve()}   # the same directory (or a copy) on every host\n")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from smsguard.core import get_settings, load_secrets

    secrets = load_secrets(get_settings())
    print(f"secrets loaded: phone key id {secrets.phone_key_id} (of {len(secrets.phone_keys)}), phone hash key, "
          "session secret, audit signing key")
    return 0


def run_add_phone_key(args: argparse.Namespace) -> int:
    import os

    from smsguard.core import create_once, format_phone_keys, parse_phone_keys

    path: Path = args.file
    keys = parse_phone_keys(path.read_bytes(), where=str(path)) if path.exists() else ()
    new_id = max((kid for kid, _ in keys), default=0) + 1
    text = format_phone_keys(((new_id, os.urandom(32)), *keys)) + "\n"
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    create_once(tmp, text.encode())
    os.replace(tmp, path)  # atomic: a process reading the file sees the old keys or the new ones
    print(f"{path}: phone key {new_id} encrypts now; {len(keys)} older key(s) kept to decrypt. Restart every "
          "process of the deployment with this file, then run `smsguard keys rotate`.")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from smsguard.batches import rotate_phone_keys
    from smsguard.core import get_settings
    from smsguard.runtime import Runtime

    with Runtime(get_settings()) as runtime:
        report = rotate_phone_keys(runtime.db, runtime.vault, chunk=args.chunk)
    for table, n in report.rotated.items():
        print(f"{table}: {n} re-encrypted, {report.already[table]} already under key {report.key_id}")
    print(f"done: every stored number is under phone key {report.key_id}; older keys may now be removed")
    return 0
