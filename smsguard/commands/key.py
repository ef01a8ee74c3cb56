"""``smsguard key create|list|revoke``: API keys. A key is shown once, at creation; only its SHA-256 and its
first 12 characters (to list and revoke it by) are stored."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("key", help="manage API keys")
    ksub = p.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    create = ksub.add_parser("create", help="create an API key for a tenant (printed once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--label", default="", help="a note to tell keys apart in listings")
    create.add_argument("--admin", action="store_true", help="may reload policy/lexicons/model (= --role admin)")
    create.add_argument(
        "--role",
        choices=("client", "admin", "auditor", "auditor_full"),
        default=None,
        help="client: screen; admin: also reload; auditor: its tenant's audit log, numbers masked; "
        "auditor_full: every tenant's audit log, numbers as stored",
    )
    create.set_defaults(handler=run_create)
    lst = ksub.add_parser("list", help="list a tenant's keys (prefixes only)")
    lst.add_argument("--tenant", required=True)
    lst.set_defaults(handler=run_list)
    revoke = ksub.add_parser("revoke", help="revoke a key by its listed prefix (or the whole key)")
    revoke.add_argument("prefix")
    revoke.set_defaults(handler=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    from storage import create_key

    from .tenant import open_db

    key, listing = create_key(open_db(), args.tenant, label=args.label, admin=args.admin, role=args.role)
    role = f" ({listing.role})" if listing.role != "client" else ""
    print(f"API key for tenant {args.tenant}{role}, shown once, store it now:")
    print(key)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from storage import list_keys

    from .tenant import open_db

    for k in list_keys(open_db(), args.tenant):
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "live"
        role = k.role
        print(f"{k.prefix}…\t{role}\t{state}\tcreated={k.created_at:%Y-%m-%d %H:%M}\t{k.label}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from engine import SmsguardError
    from storage import revoke_key

    from .tenant import open_db

    n = revoke_key(open_db(), args.prefix)
    if not n:
        raise SmsguardError(f"no live key starts with {args.prefix!r}", where="prefix", code="key.not_found")
    print(f"revoked {n} key(s); processes stop accepting it within SMSGUARD_KEY_CACHE_TTL seconds")
    return 0
