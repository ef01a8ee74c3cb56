"""``smsguard key create|list|revoke``: API keys. A key is shown once, at creation; only its SHA-256 and its
first 12 characters (to list and revoke it by) are stored.

``smsguard key vendor create|list|revoke``: Tencent Cloud / Aliyun credentials for the drop-in endpoints
(api/_vendors.py). The secret is shown once and stored encrypted, not hashed: checking a request's HMAC
signature needs the secret itself.

``smsguard key cmpp create|list|revoke``: access accounts (Source_Addr + secret) for the ``cmpp`` and ``smpp``
serve roles;
the secret is stored encrypted too (CONNECT authenticates with an MD5 over it)."""

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
    vendor = ksub.add_parser("vendor", help="Tencent Cloud / Aliyun SMS credentials for the drop-in endpoints")
    vsub = vendor.add_subparsers(dest="vendor_command", required=True, metavar="ACTION")
    vcreate = vsub.add_parser("create", help="create a SecretId/SecretKey (tencent) or AccessKey (aliyun), shown once")
    vcreate.add_argument("--tenant", required=True)
    vcreate.add_argument("--vendor", required=True, choices=("tencent", "aliyun"))
    vcreate.add_argument("--app-id", default=None, help="tencent: the SmsSdkAppId to accept (default: a new one)")
    vcreate.add_argument("--label", default="")
    vcreate.set_defaults(handler=run_vendor_create)
    vlist = vsub.add_parser("list", help="list a tenant's vendor credentials (ids only)")
    vlist.add_argument("--tenant", required=True)
    vlist.set_defaults(handler=run_vendor_list)
    vrevoke = vsub.add_parser("revoke", help="revoke a vendor credential by its SecretId / AccessKeyId")
    vrevoke.add_argument("access_id")
    vrevoke.set_defaults(handler=run_vendor_revoke)
    cmpp = ksub.add_parser("cmpp", help="access accounts for customers' own CMPP 2.0/3.0 and SMPP 3.4 clients "
                                        "(serve roles cmpp, smpp)")
    csub = cmpp.add_subparsers(dest="cmpp_command", required=True, metavar="ACTION")
    ccreate = csub.add_parser("create", help="create a Source_Addr + shared secret (the secret shown once)")
    ccreate.add_argument("--tenant", required=True)
    ccreate.add_argument("--sp-id", default=None, help="the 6-character Source_Addr (default: 6 random digits)")
    ccreate.add_argument("--connections", type=int, default=2, help="binds at once (default 2)")
    ccreate.add_argument("--window", type=int, default=16, help="SUBMITs unanswered at once per bind (default 16)")
    ccreate.add_argument("--rate", type=float, default=100.0, help="SUBMITs per second (default 100)")
    ccreate.add_argument("--label", default="")
    ccreate.add_argument("--secret-length", type=int, default=16,
                         help="8 for SMPP clients (SMPP 3.4's password is at most 8 characters); default 16")
    ccreate.set_defaults(handler=run_cmpp_create)
    clist = csub.add_parser("list", help="list a tenant's CMPP accounts")
    clist.add_argument("--tenant", required=True)
    clist.set_defaults(handler=run_cmpp_list)
    crevoke = csub.add_parser("revoke", help="revoke a CMPP account by its Source_Addr")
    crevoke.add_argument("sp_id")
    crevoke.set_defaults(handler=run_cmpp_revoke)


def run_create(args: argparse.Namespace) -> int:
    from smsguard.storage import create_key

    from .tenant import open_db

    key, listing = create_key(open_db(), args.tenant, label=args.label, admin=args.admin, role=args.role)
    role = f" ({listing.role})" if listing.role != "client" else ""
    print(f"API key for tenant {args.tenant}{role}, shown once, store it now:")
    print(key)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from smsguard.storage import list_keys

    from .tenant import open_db

    for k in list_keys(open_db(), args.tenant):
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "live"
        role = k.role
        print(f"{k.prefix}…\t{role}\t{state}\tcreated={k.created_at:%Y-%m-%d %H:%M}\t{k.label}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from smsguard.core import SmsguardError
    from smsguard.storage import revoke_key

    from .tenant import open_db

    n = revoke_key(open_db(), args.prefix)
    if not n:
        raise SmsguardError(f"no live key starts with {args.prefix!r}", where="prefix", code="key.not_found")
    print(f"revoked {n} key(s); processes stop accepting it within SMSGUARD_KEY_CACHE_TTL seconds")
    return 0


def run_vendor_create(args: argparse.Namespace) -> int:
    from smsguard.core import get_settings
    from smsguard.runtime import Runtime
    from smsguard.vendors import create_credential

    from .tenant import open_db

    vault = Runtime(get_settings()).vault  # the deployment's phone encryption key encrypts the secret
    cred, secret = create_credential(open_db(), vault, args.tenant, args.vendor, label=args.label,
                                     app_id=args.app_id)
    print(f"{args.vendor} credential for tenant {args.tenant}; the secret is shown once, store it now:")
    if args.vendor == "tencent":
        print(f"SecretId:    {cred.access_id}\nSecretKey:   {secret}\nSmsSdkAppId: {cred.app_id}")
    else:
        print(f"AccessKeyId:     {cred.access_id}\nAccessKeySecret: {secret}")
    return 0


def run_vendor_list(args: argparse.Namespace) -> int:
    from smsguard.vendors import list_credentials

    from .tenant import open_db

    for c in list_credentials(open_db(), args.tenant):
        state = f"revoked {c.revoked_at:%Y-%m-%d %H:%M}" if c.revoked_at else "live"
        app = f"\tapp={c.app_id}" if c.app_id else ""
        print(f"{c.vendor}\t{c.access_id}{app}\t{state}\tcreated={c.created_at:%Y-%m-%d %H:%M}\t{c.label}")
    return 0


def run_vendor_revoke(args: argparse.Namespace) -> int:
    from smsguard.core import SmsguardError
    from smsguard.vendors import revoke_credential

    from .tenant import open_db

    if not revoke_credential(open_db(), args.access_id):
        raise SmsguardError(f"no live vendor credential {args.access_id!r}", where="access_id",
                            code="vendor.not_found")
    print("revoked; the endpoints refuse it from the next request on")
    return 0


def run_cmpp_create(args: argparse.Namespace) -> int:
    from smsguard.core import get_settings
    from smsguard.runtime import Runtime
    from smsguard.vendors import create_account

    from .tenant import open_db

    vault = Runtime(get_settings()).vault
    account, secret = create_account(open_db(), vault, args.tenant, sp_id=args.sp_id, max_connections=args.connections,
                                     window=args.window, rate=args.rate, label=args.label,
                                     secret_length=args.secret_length)
    print(f"CMPP/SMPP account for tenant {args.tenant}; the secret is shown once, store it now:")
    print(f"Source_Addr: {account.sp_id}\nSecret:      {secret}")
    print("(SMPP: system_id = Source_Addr, password = Secret)")
    print("the cmpp and smpp roles accept it within 10 seconds")
    return 0


def run_cmpp_list(args: argparse.Namespace) -> int:
    from smsguard.vendors import list_accounts

    from .tenant import open_db

    for a in list_accounts(open_db(), args.tenant):
        state = f"revoked {a.revoked_at:%Y-%m-%d %H:%M}" if a.revoked_at else "live"
        print(f"{a.sp_id}\tconnections={a.max_connections}\twindow={a.window}\trate={a.rate:g}/s\t{state}\t"
              f"created={a.created_at:%Y-%m-%d %H:%M}\t{a.label}")
    return 0


def run_cmpp_revoke(args: argparse.Namespace) -> int:
    from smsguard.core import SmsguardError
    from smsguard.vendors import revoke_account

    from .tenant import open_db

    if not revoke_account(open_db(), args.sp_id):
        raise SmsguardError(f"no live CMPP account {args.sp_id!r}", where="sp_id", code="cmpp.not_found")
    print("revoked; the cmpp role refuses new binds within 10 seconds")
    return 0
