"""``smsguard train``: build models/classifier.onnx and its model card from ../shared/data.

``--with-reviews`` alone reads the decided review items from SQL; ``--export-reviews FILE`` writes them out.

Exit codes: 0 = trained and written; 2 = an error (bad data file, unreadable model, …);
3 = ``--with-reviews`` trained a model that is worse than the current one on the dev split, so
nothing was written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FROM_SQL = Path("<sql>")  # ``--with-reviews`` with no file: read the review items from the database


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the ONNX spam/fraud classifier and write its model card")
    p.add_argument("--data-dir", type=Path, help="corpora directory (default: ../shared/data next to the repo)")
    p.add_argument("--out", type=Path, help="output directory (default: models/)")
    p.add_argument("--seed", type=int, help="seed of the dev split and the validation split (default: 20261125)")
    p.add_argument("--dev-fraction", type=float, default=0.2, help="share of each stratum held out as dev")
    p.add_argument("--with-uci", action="store_true", help="also train on the English UCI SMS Spam Collection")
    p.add_argument(
        "--with-reviews",
        nargs="?",
        const=FROM_SQL,
        type=Path,
        metavar="JSONL",
        help="add reviewer-labelled items: the decided review items in SQL, or a JSONL file (text + label or "
        "decision); promote only if not worse on the dev split",
    )
    p.add_argument("--export-reviews", type=Path, metavar="FILE",
                   help="write the decided review items in SQL to FILE as JSON lines and exit (no training)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.0005,
        help="with --with-reviews: how much worse any dev metric may get and still count as not worse",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline (its ~20 s) and its card section")
    p.add_argument("--limit", type=int, help=argparse.SUPPRESS)  # rows per corpus: quick runs and tests
    p.set_defaults(handler=run)


def _command(args: argparse.Namespace) -> str:
    """The command line as the card should show it (paths as given, defaults left out)."""
    parts = ["smsguard train"]
    for flag, value in (
        ("--data-dir", args.data_dir),
        ("--out", args.out),
        ("--seed", args.seed),
        ("--with-reviews", "" if args.with_reviews == FROM_SQL else args.with_reviews),
        ("--limit", args.limit),
    ):
        if value is not None:
            parts.append(f"{flag} {value}".rstrip())
    if args.dev_fraction != 0.2:
        parts.append(f"--dev-fraction {args.dev_fraction}")
    if args.with_reviews and args.tolerance != 0.0005:
        parts.append(f"--tolerance {args.tolerance}")
    parts += [flag for flag, on in (("--with-uci", args.with_uci), ("--no-baseline", args.no_baseline)) if on]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    # imported here: scikit-learn and skl2onnx are only needed by this command
    from smsguard.training.reviews import JsonlReviewSource, export_jsonl, sql_source
    from smsguard.training.run import DEFAULT_SEED, EXIT_NOT_PROMOTED, Options
    from smsguard.training.run import run as train

    from .tenant import open_db

    if args.export_reviews:
        n = export_jsonl(sql_source(open_db()), args.export_reviews)
        print(f"wrote {n:,} reviewer label(s) to {args.export_reviews}")
        return 0

    opts = Options(
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        dev_fraction=args.dev_fraction,
        with_uci=args.with_uci,
        baseline=not args.no_baseline,
        tolerance=args.tolerance,
        limit=args.limit,
        command=_command(args),
    )
    if args.data_dir:
        opts.data_dir = args.data_dir
    if args.out:
        opts.out_dir = args.out
    if args.with_reviews == FROM_SQL:
        from smsguard.core import get_settings

        opts.reviews = sql_source(open_db())
        opts.reviews_name = f"review items in SQL ({'embedded SQLite' if get_settings().embedded else 'DATABASE_URL'})"
    elif args.with_reviews:
        opts.reviews = JsonlReviewSource(args.with_reviews)
        opts.reviews_name = str(args.with_reviews)
    result = train(opts, log=lambda s: print(s, file=sys.stderr))
    return 0 if result.promoted else EXIT_NOT_PROMOTED
