"""``smsguard train``: build models/classifier.onnx and its model card from ../shared/data.

Exit codes: 0 = trained and written; 2 = an error (bad data file, unreadable model, …);
3 = ``--with-reviews`` trained a model that is worse than the current one on the dev split, so
nothing was written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the ONNX spam/fraud classifier and write its model card")
    p.add_argument("--data-dir", type=Path, help="corpora directory (default: ../shared/data next to the repo)")
    p.add_argument("--out", type=Path, help="output directory (default: models/)")
    p.add_argument("--seed", type=int, help="seed of the dev split and the validation split (default: 20261125)")
    p.add_argument("--dev-fraction", type=float, default=0.2, help="share of each stratum held out as dev")
    p.add_argument("--with-uci", action="store_true", help="also train on the English UCI SMS Spam Collection")
    p.add_argument(
        "--with-reviews",
        type=Path,
        metavar="JSONL",
        help="add reviewer-labelled items (JSON lines: text + label or decision); promote only if not worse",
    )
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
        ("--with-reviews", args.with_reviews),
        ("--limit", args.limit),
    ):
        if value is not None:
            parts.append(f"{flag} {value}")
    if args.dev_fraction != 0.2:
        parts.append(f"--dev-fraction {args.dev_fraction}")
    if args.with_reviews and args.tolerance != 0.0005:
        parts.append(f"--tolerance {args.tolerance}")
    parts += [flag for flag, on in (("--with-uci", args.with_uci), ("--no-baseline", args.no_baseline)) if on]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    # imported here: scikit-learn and skl2onnx are only needed by this command
    from training.reviews import JsonlReviewSource
    from training.run import DEFAULT_SEED, EXIT_NOT_PROMOTED, Options
    from training.run import run as train

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
    if args.with_reviews:
        opts.reviews = JsonlReviewSource(args.with_reviews)
        opts.reviews_name = str(args.with_reviews)
    result = train(opts, log=lambda s: print(s, file=sys.stderr))
    return 0 if result.promoted else EXIT_NOT_PROMOTED
