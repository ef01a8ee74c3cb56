"""``smsguard numbers …``: phone numbers as the service sees them, and the portability table (携号转网).

* ``import-portability FILE``: stream a ``number,carrier`` CSV (millions of rows) into SQL; numbers stored
  by keyed hash; prints the counts, rows/s and the first rejected lines (exit 1 if any line was rejected).
* ``lookup NUMBER``: the canonical number (masked), its block's network and, if ported, the network now.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("numbers", help="number portability and carrier look-up")
    nsub = p.add_subparsers(dest="numbers_command", required=True, metavar="ACTION")
    imp = nsub.add_parser("import-portability", help="import a number,carrier CSV (携号转网)")
    imp.add_argument("file", help="CSV or TSV: number,carrier per line (mobile/unicom/telecom/broadnet or 移动/…)")
    imp.add_argument("--batch", type=int, default=10_000, help="rows per transaction (default 10,000)")
    imp.set_defaults(handler=run_import)
    look = nsub.add_parser("lookup", help="the network a number is on (portability first, then its block)")
    look.add_argument("number")
    look.set_defaults(handler=run_lookup)


def _portability():
    from smsguard.core import get_settings, load_secrets
    from smsguard.phones import PhoneVault, portability_for

    from .tenant import open_db

    secrets = load_secrets(get_settings())
    return portability_for(open_db(), PhoneVault(secrets.phone_keys, secrets.phone_hash_key))


def run_import(args: argparse.Namespace) -> int:
    from smsguard.engine import SmsguardError

    path = Path(args.file)
    if not path.is_file():
        raise SmsguardError("no such file", where=str(path), code="input.file")
    if args.batch < 1:
        raise SmsguardError("must be at least 1", where="--batch", code="input.batch")
    with path.open("rb") as f:
        result = _portability().import_file(f, batch=args.batch)
    print(f"{path}: {result.imported:,} numbers imported from {result.lines:,} lines in {result.seconds:.1f} s "
          f"({result.rows_per_second:,.0f} rows/s); {result.rejected:,} rejected")
    for r in result.first_rejects:
        print(f"  line {r.line}: {r.reason} [{r.code}]", file=sys.stderr)
    return 1 if result.rejected else 0


def run_lookup(args: argparse.Namespace) -> int:
    from smsguard.phones import CARRIER_LABELS, parse_phone

    phone = parse_phone(args.number, where="NUMBER")
    now = _portability().resolve(phone)
    block = f"{phone.carrier} ({CARRIER_LABELS[phone.carrier]}){', virtual' if phone.virtual else ''}"
    line = f"{phone.masked}\tblock: {block}\tnow: {now.carrier} ({CARRIER_LABELS[now.carrier]})"
    print(line + ("\tported" if now.ported else "") + f"\tprice key: {now.price_key}")
    return 0
