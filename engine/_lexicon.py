"""Lexicon files: reading, validating and versioning sensitive-word lists.

A lexicon directory holds UTF-8 TSV files. Lines starting with ``#`` and blank lines are ignored.
Every other line is ``term<TAB>category<TAB>severity<TAB>mode``:

* ``severity`` is ``low``, ``medium`` or ``high``; policy.yaml maps category × severity to an action;
* ``mode`` is ``substring`` (anywhere, after normalization), ``word`` (the hit must start and end on
  jieba token boundaries of the original text) or ``exact`` (the whole normalized message).

A file named ``allow.tsv`` is the allowlist: one term a line (a second column is a free note).
An allowlisted occurrence suppresses every hit it overlaps (测试 protects 试药 in 测试药物).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from smsguard.core import PROJECT_ROOT, LexiconError

Severity = Literal["low", "medium", "high"]
Mode = Literal["substring", "word", "exact"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
MODES: tuple[str, ...] = get_args(Mode)
ALLOW_FILE = "allow.tsv"


@dataclass(frozen=True, slots=True)
class Term:
    term: str
    category: str
    severity: Severity
    mode: Mode
    where: str  # "path:line" (see ``file_location``), for lint messages and error reports


@dataclass(frozen=True, slots=True)
class Lexicon:
    terms: tuple[Term, ...]
    allow: tuple[Term, ...]
    version: str
    sources: tuple[str, ...] = field(default=())

    @classmethod
    def load(cls, *directories: Path) -> Lexicon:
        """Load every ``*.tsv`` in the given directories (missing directories are skipped)."""
        files: list[Path] = []
        for d in directories:
            if d.is_dir():
                files.extend(sorted(d.glob("*.tsv")))
        return cls.from_files(files)

    @classmethod
    def from_files(cls, files: Iterable[Path]) -> Lexicon:
        terms: list[Term] = []
        allow: list[Term] = []
        digest = hashlib.sha256()
        sources = []
        for path in files:
            raw = path.read_bytes()
            digest.update(path.name.encode() + b"\0" + raw + b"\0")
            sources.append(str(path))
            target = allow if path.name == ALLOW_FILE else terms
            target.extend(parse_lines(raw, file_location(path), is_allow=path.name == ALLOW_FILE))
        return cls(tuple(terms), tuple(allow), digest.hexdigest()[:12], tuple(sources))


def file_location(path: Path, line: int | None = None) -> str:
    """How error reports and lint name a file (and a line of it): the path relative to the project root
    when the file is under it (``lexicons/fraud.tsv:12``), else absolute (``/srv/extra/fraud.tsv:12``).
    Lexicons load from several directories, so the bare file name would be ambiguous."""
    absolute = Path(os.path.abspath(path))
    shown = str(absolute)
    for candidate in (absolute, absolute.resolve()):
        if candidate.is_relative_to(PROJECT_ROOT):
            shown = candidate.relative_to(PROJECT_ROOT).as_posix()
            break
    return shown if line is None else f"{shown}:{line}"


def parse_lines(raw: bytes, name: str, *, is_allow: bool) -> Iterable[Term]:
    """The terms of one file's bytes; ``name`` is how errors and ``Term.where`` name the file
    (``file_location(path)`` for a file on disk)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = e.object.count(b"\n", 0, e.start) + 1  # name the line, like every other lexicon error
        raise LexiconError(
            f"not UTF-8 ({e.reason} at byte {e.start})", where=f"{name}:{line}", code="lexicon.encoding"
        ) from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{name}:{lineno}"
        cols = [c.strip() for c in line.split("\t")]
        term = cols[0]
        if not term:
            raise LexiconError("empty term", where=where, code="lexicon.empty_term")
        if is_allow:
            yield Term(term, "allow", "low", "substring", where)
            continue
        if len(cols) != 4:
            raise LexiconError(
                f"expected 4 tab-separated columns (term, category, severity, mode), got {len(cols)}",
                where=where,
                code="lexicon.columns",
            )
        _, category, severity, mode = cols
        if not category:
            raise LexiconError("empty category", where=where, code="lexicon.category")
        if severity not in SEVERITIES:
            raise LexiconError(
                f"severity {severity!r} is not one of {', '.join(SEVERITIES)}", where=where, code="lexicon.severity"
            )
        if mode not in MODES:
            raise LexiconError(f"mode {mode!r} is not one of {', '.join(MODES)}", where=where, code="lexicon.mode")
        yield Term(term, category, severity, mode, where)  # type: ignore[arg-type]


def format_line(term: Term) -> str:
    return f"{term.term}\t{term.category}\t{term.severity}\t{term.mode}"


@dataclass(frozen=True, slots=True)
class ImportReport:
    terms: tuple[Term, ...]
    skipped: tuple[tuple[int, str], ...]  # (line number, why)


def import_terms(
    text: str,
    *,
    category: str,
    severity: Severity,
    mode: Mode,
    name: str,
    min_length: int = 2,
    existing: frozenset[str] = frozenset(),
) -> ImportReport:
    """Read a user's word list: one term a line, or TSV whose first column is the term.

    Single characters are skipped by default: as substrings they fire on most messages.
    """
    if severity not in SEVERITIES:
        raise LexiconError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}", where="--severity")
    if mode not in MODES:
        raise LexiconError(f"mode {mode!r} is not one of {', '.join(MODES)}", where="--mode")
    if not category or any(c in category for c in "\t/\\\n") or category in ("allow", "."):
        raise LexiconError(f"category {category!r} is not a usable name", where="--category")
    seen = set(existing)
    terms: list[Term] = []
    skipped: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        term = line.split("\t", 1)[0].strip()
        if not term or term.startswith("#"):
            continue
        if len(term) < min_length:
            skipped.append((lineno, f"{term!r} is shorter than {min_length} characters"))
        elif term in seen:
            skipped.append((lineno, f"{term!r} is a duplicate"))
        else:
            seen.add(term)
            terms.append(Term(term, category, severity, mode, f"{name}:{lineno}"))
    return ImportReport(tuple(terms), tuple(skipped))
