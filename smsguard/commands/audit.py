"""``smsguard audit verify|checkpoint|public-key|export|trail|archive|verify-archive|replay``: the tamper-evident
log. ``replay VERDICT_ID`` screens a stored verdict again under its stored policy, lexicon and model.

``verify`` exits 1 and names the first broken event when the chain does not hold; ``--anchors DIR`` holds the
database to the signed checkpoint files written outside it (truncation, deleted checkpoints, rewrites).
``export`` and ``trail`` write CSV or JSONL to stdout (or ``--out``), numbers masked unless ``--unmask``;
each export is itself recorded as an ``export`` event (actor ``cli:<os user>``). ``checkpoint --every M``
keeps signing the head every M minutes (a cron-like loop for deployments that do not run ``smsguard serve``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ._times import aware_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="verify, checkpoint, export, trail and archive the audit log")
    asub = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    v = asub.add_parser("verify", help="recompute the hash chain and check signed checkpoints")
    v.add_argument("--from", dest="start", default=None, help="first event: an id or a date/time (ISO 8601, UTC)")
    v.add_argument("--to", dest="end", default=None, help="last event: an id or a date/time (ISO 8601, UTC)")
    v.add_argument("--public-key", type=Path, default=None, help="PEM public key (default: the local signing key)")
    v.add_argument("--anchors", type=Path, default=None, metavar="DIR",
                   help="hold the database to the signed checkpoint files in DIR (SMSGUARD_AUDIT_ANCHOR_DIR)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(handler=run_verify)

    c = asub.add_parser("checkpoint", help="sign the current chain head (Ed25519)")
    c.add_argument("--every", type=float, default=None, metavar="MINUTES", help="repeat every MINUTES until killed")
    c.add_argument("--anchors", type=Path, default=None, metavar="DIR",
                   help="also write the checkpoint here (default: SMSGUARD_AUDIT_ANCHOR_DIR)")
    c.set_defaults(handler=run_checkpoint)

    k = asub.add_parser("public-key", help="print the checkpoint signing key's public half (PEM)")
    k.set_defaults(handler=run_public_key)

    for name, helptext in (("export", "export events as CSV or JSONL"), ("trail", "every event of a batch or number")):
        e = asub.add_parser(name, help=helptext)
        e.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
        e.add_argument("--out", type=Path, default=None, help="write here instead of stdout")
        e.add_argument("--unmask", action="store_true", help="phone numbers as stored (compliance use only)")
        if name == "export":
            e.add_argument("--tenant", default=None, help="tenant name")
            e.add_argument("--from", dest="start", default=None, help="events at or after (ISO 8601 date/time, UTC)")
            e.add_argument("--to", dest="end", default=None, help="events before (ISO 8601 date/time, UTC)")
            e.add_argument("--type", dest="types", action="append", default=[], help="event type, or prefix.* (repeat)")
        else:
            g = e.add_mutually_exclusive_group(required=True)
            g.add_argument("--batch", default=None, help="batch id")
            g.add_argument("--phone", default=None, help="phone number (looked up by its keyed hash)")
        e.set_defaults(handler=run_export)

    a = asub.add_parser("archive", help="move events older than the retention period to a gzip file with proof")
    a.add_argument("--before", default=None, help="archive events before this date (default: now - retention_days)")
    a.add_argument("--out-dir", type=Path, default=None, help="where archives go (default <data dir>/audit-archive)")
    a.set_defaults(handler=run_archive)

    r = asub.add_parser("replay", help="screen a stored verdict again under the versions that decided it")
    r.add_argument("verdict_id", metavar="VERDICT_ID")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(handler=run_replay)

    va = asub.add_parser("verify-archive", help="re-verify an archive file on its own")
    va.add_argument("file", type=Path)
    va.add_argument("--public-key", type=Path, default=None)
    va.set_defaults(handler=run_verify_archive)


def _when(value: str) -> datetime:
    return aware_time(value, expected="an id or ISO 8601 date/time", where="--from/--to", code="audit.args")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name (containers): still say where it came from
        return "cli:unknown"


def _event_id_at(db, value: str | None, *, end: bool) -> int | None:
    """An id as given, or the first event at/after a time (``--from``), the last before it (``--to``)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    from sqlalchemy import func, select

    from smsguard.audit._tables import events

    when = _when(value)
    q = select(func.max(events.c.id)).where(events.c.ts < when) if end else \
        select(func.min(events.c.id)).where(events.c.ts >= when)
    with db.connect() as conn:
        found = conn.execute(q).scalar()
    return found if found is not None else (0 if end else 1 << 62)


def run_verify(args: argparse.Namespace) -> int:
    from smsguard.audit import chain_key, load_signing_key, verify
    from smsguard.audit._signing import KEY_FILE, load_public_key
    from smsguard.core import get_settings

    from .tenant import open_db

    db = open_db()
    data_dir = get_settings().data_dir
    # Where the signing key is, it also gives the chain key (MACs); an auditor with only the public key checks
    # signatures and anchors.
    secret = load_signing_key(_signing_key()) if (data_dir / KEY_FILE).exists() or get_settings().database_url else None
    pub = load_public_key(args.public_key.read_bytes()) if args.public_key else \
        (secret.public_key() if secret is not None else None)
    mac_key = chain_key(secret) if secret is not None and (
        args.public_key is None or load_public_key(args.public_key.read_bytes()) == secret.public_key()) else None
    report = verify(db, from_id=_event_id_at(db, args.start, end=False), to_id=_event_id_at(db, args.end, end=True),
                    public_key=pub, chain_key=mac_key, anchors=args.anchors)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        span = f"events {report.first_id}..{report.last_id}" if report.checked else "no events"
        print(f"checked {report.checked:,} {span} and {report.checkpoints_checked} checkpoint(s) "
              f"in {report.seconds:.2f} s")
        print(f"{report.macs_checked:,} MAC(s) and {report.anchors_checked} anchor file(s) checked")
        if report.unkeyed:
            print(f"note: {report.unkeyed:,} event(s) predate the keyed chain: only SHA-256 and checkpoints vouch "
                  "for them")
        for note in [*report.checkpoint_problems, *report.notes]:
            print(f"note: {note}")
        if report.ok:
            print("OK: the chain is intact")
        else:
            print(f"BROKEN at event {report.broken_event}: {report.problem}")
    return 0 if report.ok else 1


def run_checkpoint(args: argparse.Namespace) -> int:
    from smsguard.audit import Anchors, anchors_from, checkpoint
    from smsguard.core import get_settings

    from .tenant import open_db

    settings = get_settings()
    db = open_db()
    anchors = anchors_from(settings)
    if args.anchors is not None:
        anchors = Anchors(directory=args.anchors, witness_url=anchors.witness_url)
    while True:
        cp = checkpoint(db, _signing_key(), only_if_moved=args.every is not None, anchors=anchors)
        if cp is not None:
            print(f"checkpoint {cp.id}: event {cp.event_id} hash {cp.event_hash} key {cp.key_id}", flush=True)
        elif args.every is None:
            print("the audit log is empty: nothing to sign")
        if args.every is None:
            return 0
        time.sleep(args.every * 60)


def run_public_key(_: argparse.Namespace) -> int:
    from smsguard.audit import load_signing_key, public_pem

    sys.stdout.write(public_pem(load_signing_key(_signing_key())))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from smsguard.audit import EventFilter, phone_hash, record_export, stream_events
    from smsguard.core import get_settings, load_secrets
    from smsguard.storage import get_tenant

    from .tenant import open_db

    db = open_db()
    if args.audit_command == "trail":
        phone = phone_hash(args.phone, load_secrets(get_settings()).phone_hash_key) if args.phone else None
        flt = EventFilter(batch=args.batch, phone_ref=phone)
        tenant_id = None
    else:
        tenant_id = get_tenant(db, args.tenant).id if args.tenant else None
        flt = EventFilter(
            tenant_id=tenant_id,
            since=_when(args.start) if args.start else None,
            until=_when(args.end) if args.end else None,
            types=tuple(args.types),
        )
    record_export(db, actor=_actor(), tenant_id=tenant_id, flt=flt, fmt=args.format, unmask=args.unmask,
                  what="export")
    out = open(args.out, "wb") if args.out else sys.stdout.buffer  # noqa: SIM115 - closed below when ours
    try:
        for chunk in stream_events(db, flt, args.format, unmask=args.unmask):
            out.write(chunk)
    finally:
        if args.out:
            out.close()
        else:
            out.flush()
    return 0


def run_archive(args: argparse.Namespace) -> int:
    from smsguard.audit import archive
    from smsguard.core import get_settings
    from smsguard.runtime import PolicyDocument

    from .tenant import open_db

    settings = get_settings()
    retention = PolicyDocument.load(settings.policy_path).audit.retention_days
    before = _when(args.before) if args.before else datetime.now(UTC) - timedelta(days=retention)
    if args.before and len(args.before) == 10:  # a bare date means "before that day", as the user reads it
        before = datetime.combine(date.fromisoformat(args.before), datetime.min.time(), UTC)
    result = archive(open_db(), before=before, out_dir=args.out_dir or settings.data_dir / "audit-archive",
                     data_dir=_signing_key(), actor=_actor(), retention_days=retention)
    if result is None:
        print(f"nothing to archive before {before:%Y-%m-%d %H:%M} UTC")
        return 0
    print(f"archived events {result.first_id}..{result.last_id} ({result.count:,}) to {result.path} "
          f"(sha256 {result.file_sha256}); recorded as event {result.event_id}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """Exit 0 when the verdict is reproduced byte for byte, 1 when it differs (each difference named)."""
    from smsguard.audit import replay

    from .tenant import open_db

    result = replay(open_db(), args.verdict_id)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0 if result.identical else 1
    v = result.versions
    under = f"policy {v['policy']}, lexicon {v['lexicon']}, model {v['model']}"
    if not result.request_exact:
        print("note: the request carried a separate signature that was not stored; replayed without it")
    if result.identical:
        print(f"IDENTICAL: verdict {result.verdict_id} reproduced byte for byte under {under}")
        return 0
    print(f"DIFFERS: verdict {result.verdict_id} replayed under {under}:")
    for d in result.differences:
        print(f"  {d}")
    return 1


def run_verify_archive(args: argparse.Namespace) -> int:
    from smsguard.audit import verify_archive
    from smsguard.audit._signing import load_public_key

    pub = load_public_key(args.public_key.read_bytes()) if args.public_key else None
    proof = verify_archive(args.file, pub)
    print(f"OK: events {proof['first_id']}..{proof['last_id']} ({proof['count']:,}), last hash {proof['last_hash']}")
    return 0


def _signing_key() -> bytes:
    """The deployment's audit signing key (PEM), from the settings' secrets (generated under var/ when embedded)."""
    from smsguard.core import get_settings, load_secrets

    return load_secrets(get_settings()).audit_signing_key
