"""``smsguard tenant create|list|set-limit``: tenants of the screening API (DATABASE_URL or the SQLite file).

``create`` also makes the tenant's first API key and prints it once; only its SHA-256 is stored.
A tenant's name is also its key in policy.yaml ``tenants:``, where its policy overrides live.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tenant", help="manage API tenants")
    tsub = p.add_subparsers(dest="tenant_command", required=True, metavar="ACTION")
    create = tsub.add_parser("create", help="create a tenant and its first API key (printed once)")
    create.add_argument("name", help="tenant name (a-z 0-9 _ . -); also its key in policy.yaml tenants:")
    create.add_argument("--rate-limit", type=int, default=None, help="messages per rate window (default: service)")
    create.add_argument("--admin", action="store_true", help="the first key may reload policy/lexicons/model")
    create.add_argument("--no-key", action="store_true", help="do not create a key")
    create.set_defaults(handler=run_create)
    lst = tsub.add_parser("list", help="list tenants")
    lst.set_defaults(handler=run_list)
    limit = tsub.add_parser("set-limit", help="set (or with 0 clear) a tenant's own rate limit")
    limit.add_argument("name")
    limit.add_argument("rate_limit", type=int, help="messages per rate window; 0 = the service default")
    limit.set_defaults(handler=run_set_limit)


def open_db():
    """The database of the settings in force, migrated to the newest schema."""
    from smsguard.core import get_settings
    from smsguard.storage import make_engine, migrate

    db = make_engine(get_settings().sqlalchemy_url)
    migrate(db)
    return db


def run_create(args: argparse.Namespace) -> int:
    from smsguard.storage import create_key, create_tenant

    db = open_db()
    tenant = create_tenant(db, args.name, rate_limit=args.rate_limit)
    print(f"tenant {tenant.name} created (id {tenant.id}, rate limit {tenant.rate_limit or 'default'})")
    if not args.no_key:
        key, _ = create_key(db, tenant.name, label="first key", admin=args.admin)
        print(f"API key{' (admin)' if args.admin else ''}, shown once, store it now:\n{key}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from smsguard.storage import list_tenants

    for t in list_tenants(open_db()):
        print(f"{t.name}\tid={t.id}\trate_limit={t.rate_limit or 'default'}\tcreated={t.created_at:%Y-%m-%d %H:%M}")
    return 0


def run_set_limit(args: argparse.Namespace) -> int:
    from smsguard.storage import set_rate_limit

    t = set_rate_limit(open_db(), args.name, args.rate_limit or None)
    limit = t.rate_limit or "default"
    print(f"tenant {t.name}: rate limit {limit} (processes pick it up within SMSGUARD_KEY_CACHE_TTL seconds)")
    return 0
