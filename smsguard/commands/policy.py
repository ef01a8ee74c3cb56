"""``smsguard policy check [FILE]``: validate a policy file and report the first error by key path.

``smsguard policy diff --policy P --lexicon DIR --model M [--since 7d]``: shadow mode. Replays the verdict
texts stored in SQL against that candidate and reports every decision that would change, grouped by tenant,
direction, category and reason code, with the spans, as a table or ``--json``.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smsguard.engine import InputError, default_config

from ._times import aware_time

_AGO = re.compile(r"^(\d+(?:\.\d+)?)([dhm])$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="policy.yaml tools")
    psub = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = psub.add_parser("check", help="validate policy.yaml (default: the one the engine uses)")
    check.add_argument("file", nargs="?", type=Path)
    check.set_defaults(handler=run_check)

    diff = psub.add_parser("diff", help="replay stored verdicts against a candidate policy/lexicon/model (shadow)")
    diff.add_argument("--policy", type=Path, default=None, help="candidate policy.yaml (default: the one in force)")
    diff.add_argument("--lexicon", type=Path, action="append", default=None, metavar="DIR",
                      help="candidate lexicon directory (repeat; default: the directories in force)")
    diff.add_argument("--model", default=None, metavar="M",
                      help="candidate ONNX model, or 'none' (default: the one in force)")
    diff.add_argument("--since", default=None, metavar="AGE",
                      help="only verdicts stored since: 7d, 12h, 30m or an ISO 8601 date/time (default: all)")
    diff.add_argument("--limit", type=int, default=100, help="changes listed in the table (all are counted)")
    diff.add_argument("--json", action="store_true", help="print the whole report as JSON (every change)")
    diff.set_defaults(handler=run_diff)


def run_check(args: argparse.Namespace) -> int:
    path = args.file or default_config().policy_path
    from smsguard.runtime import PolicyDocument

    document = PolicyDocument.load(path)  # every section, not only the engine's keys
    policy, version = document.screening, document.version
    print(
        f"{path}: ok (version {version}, {len(policy.categories)} categories, {len(policy.rules)} rules, "
        f"{len(policy.tenants)} tenants)"
    )
    return 0


def since_of(value: str | None, now: datetime | None = None) -> datetime | None:
    """``7d`` / ``12h`` / ``30m`` ago, or an ISO 8601 date/time (UTC when it names no zone)."""
    if value is None:
        return None
    now = now or datetime.now(UTC)
    m = _AGO.match(value.strip())
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m[2]]
        return now - timedelta(**{unit: float(m[1])})
    return aware_time(value, expected="an age (7d, 12h, 30m) or ISO 8601 date/time", where="--since",
                      code="policy.diff_since")


def run_diff(args: argparse.Namespace) -> int:
    import dataclasses

    from smsguard.audit import shadow_diff
    from smsguard.engine import Engine

    from .tenant import open_db

    base = default_config()
    for d in args.lexicon or []:
        if not d.is_dir():
            raise InputError("not a directory", where=f"--lexicon {d}", code="policy.diff_lexicon")
    model = base.model_path if args.model is None else (None if args.model == "none" else Path(args.model))
    if model is not None and args.model not in (None, "none") and not model.exists():
        raise InputError("no such model file", where=f"--model {args.model}", code="policy.diff_model")
    config = dataclasses.replace(base, policy_path=args.policy or base.policy_path,
                                 lexicon_dirs=tuple(args.lexicon) if args.lexicon else base.lexicon_dirs,
                                 model_path=model)
    candidate = Engine(config)
    report = shadow_diff(open_db(), candidate, since=since_of(args.since), keep=None if args.json else args.limit)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0
    c = report.candidate
    print(f"candidate: policy {c['policy']}, lexicon {c['lexicon']}, model {c['model']}")
    print(f"replayed {report.replayed:,} stored verdicts ({report.screened:,} distinct requests) in "
          f"{report.seconds:.1f} s ({report.per_second:,.0f} verdicts/s): {report.changed:,} decisions would change "
          f"({report.flip_rate:.2%})")
    if report.inexact:
        print(f"note: {report.inexact:,} request(s) carried a separate signature that was not stored")
    if not report.changed:
        return 0
    print()
    rows = [("tenant", "change", "category", "reason code", "count")]
    rows += [(t, f"{a} -> {b}", cat, code, str(n)) for (t, a, b, cat, code), n in report.groups.most_common()]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())
    print()
    for ch in report.changes:
        print(f"{ch.verdict_id}  {ch.tenant}  {ch.before} -> {ch.after}  [{ch.code}]  {ch.text[:80]}")
        for sign, reasons in (("+", ch.added), ("-", ch.removed)):
            for r in reasons:
                where = f" {r['start']}..{r['end']} {r['span']!r}" if r["start"] is not None else ""
                print(f"    {sign} {r['code']} ({r['action']}){where}")
    if len(report.changes) < report.changed:
        print(f"... {report.changed - len(report.changes):,} more (--limit, or --json for all)")
    return 0
