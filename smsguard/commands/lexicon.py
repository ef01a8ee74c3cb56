"""``smsguard lexicon import|check``: bring in a user's word list; lint the lexicons in force."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from smsguard.core import PROJECT_ROOT, LexiconError, get_settings
from smsguard.engine import Lexicon, LexiconStage, default_config
from smsguard.engine._lexicon import MODES, SEVERITIES, file_location, format_line, import_terms, parse_lines
from smsguard.engine._lexicon_lint import lint

GOLDEN_HAM = PROJECT_ROOT / "tests" / "data" / "golden_ham.jsonl"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lexicon", help="lexicon tools")
    lsub = p.add_subparsers(dest="lexicon_command", required=True, metavar="ACTION")
    imp = lsub.add_parser("import", help="import a word list (one term a line, or TSV with the term first)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--category", required=True, help="category the terms get (policy.yaml maps it to actions)")
    imp.add_argument("--severity", default="medium", choices=SEVERITIES)
    imp.add_argument("--mode", default="substring", choices=MODES)
    imp.add_argument("--min-length", type=int, default=2, help="skip shorter terms (default 2)")
    imp.set_defaults(handler=run_import)
    check = lsub.add_parser("check", help="lint duplicates, allowlist conflicts and terms firing on golden ham")
    check.add_argument("--ham", type=Path, default=GOLDEN_HAM, help="JSONL or plain-text known-good messages")
    check.set_defaults(handler=run_check)


def _file_name(category: str) -> str:
    return re.sub(r"[^\w.-]+", "_", category) + ".tsv"


def run_import(args: argparse.Namespace) -> int:
    source = file_location(args.file)
    try:
        text = args.file.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise LexiconError(f"cannot read: {e.strerror}", where=source, code="lexicon.unreadable") from None
    except UnicodeDecodeError as e:
        raise LexiconError(f"not UTF-8 (byte {e.start})", where=source, code="lexicon.encoding") from None
    target_dir = get_settings().user_lexicon_dir
    target = target_dir / _file_name(args.category)
    existing = (
        frozenset(t.term for t in parse_lines(target.read_bytes(), file_location(target), is_allow=False))
        if target.exists()
        else frozenset()
    )
    report = import_terms(
        text,
        category=args.category,
        severity=args.severity,
        mode=args.mode,
        name=source,
        min_length=args.min_length,
        existing=existing,
    )
    target_dir.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as f:
        if not existing:
            f.write(f"# imported by `smsguard lexicon import` from {args.file.name}\n")
        for t in report.terms:
            f.write(format_line(t) + "\n")
    # Build the stage once so a term that breaks the lexicon is reported now, not at serve time.
    LexiconStage(Lexicon.load(*default_config().lexicon_dirs))
    for lineno, why in report.skipped[:20]:
        print(f"{source}:{lineno}: skipped: {why}", file=sys.stderr)
    if len(report.skipped) > 20:
        print(f"... {len(report.skipped) - 20} more skipped", file=sys.stderr)
    print(f"imported {len(report.terms)} terms into {target} ({len(report.skipped)} skipped)")
    return 0


def _ham_lines(path: Path):
    for lineno, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        text = json.loads(line)["text"] if line.startswith("{") else line
        yield file_location(path, lineno), text


def run_check(args: argparse.Namespace) -> int:
    config = default_config()
    stage = LexiconStage(Lexicon.load(*config.lexicon_dirs), matcher=config.matcher)
    ham = list(_ham_lines(args.ham)) if args.ham.exists() else []
    findings = lint(stage, ham)
    for f in findings:
        print(f"{f.where}: {f.code}: {f.message}")
    lex = stage.lexicon
    print(
        f"{len(lex.terms)} terms, {len(lex.allow)} allowlist entries, {len(ham)} ham messages checked, "
        f"{len(findings)} findings (lexicon version {lex.version})"
    )
    return 1 if findings else 0
