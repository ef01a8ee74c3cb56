"""Lexicon lint: duplicates, allowlist conflicts, and terms that fire on known-good messages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ._lexicon_stage import LexiconStage


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # lexicon.duplicate | lexicon.allow_conflict | lexicon.fires_on_ham
    where: str
    message: str


def lint(stage: LexiconStage, ham: Iterable[tuple[str, str]] = ()) -> list[Finding]:
    """``ham`` yields (where, text) pairs of messages that must not hit any term."""
    lexicon = stage.lexicon
    fold = stage.normalizer.fold
    findings: list[Finding] = []
    first: dict[tuple[str, str, str], str] = {}
    for t in lexicon.terms:
        key = (fold(t.term), t.category, t.mode)
        if key in first:
            findings.append(Finding("lexicon.duplicate", t.where, f"{t.term!r} repeats {first[key]} once normalized"))
        else:
            first[key] = t.where
    # An allowlisted key inside a term's key overlaps every occurrence of the term: it never fires.
    allow_keys = {fold(a.term): a.where for a in lexicon.allow}
    by_len: dict[int, set[str]] = defaultdict(set)
    for k in allow_keys:
        by_len[len(k)].add(k)
    for t in lexicon.terms:
        key = fold(t.term)
        for n, keys in by_len.items():
            if n > len(key):
                continue
            hit = next((key[i : i + n] for i in range(len(key) - n + 1) if key[i : i + n] in keys), None)
            if hit is not None:
                findings.append(
                    Finding(
                        "lexicon.allow_conflict",
                        t.where,
                        f"{t.term!r} contains allowlisted {hit!r} ({allow_keys[hit]}), so it can never fire",
                    )
                )
                break
    for where, text in ham:
        for hit in stage.scan(text):
            findings.append(
                Finding(
                    "lexicon.fires_on_ham",
                    hit.term.where,
                    f"{hit.term.term!r} fires on known-good message {where}: {text[hit.start : hit.end]!r} in {text!r}",
                )
            )
    return findings
