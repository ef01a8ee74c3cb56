"""Aho-Corasick multi-pattern search behind one small interface.

Two engines implement it: ``ahocorasick_rs`` (Rust, the default: about 5x faster on Chinese text
in ``bench/engine.py``) and ``pyahocorasick`` (C). Both report every overlapping occurrence as
``(pattern_index, start, end)`` in character indexes, so the lexicon stage does not care which
one it runs on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

import ahocorasick
import ahocorasick_rs

from smsguard.core import SmsguardError

Match = tuple[int, int, int]


class Matcher(Protocol):
    name: ClassVar[str]

    def find_all(self, text: str) -> list[Match]:
        """Every occurrence of every pattern, overlapping ones included, as (index, start, end)."""
        ...


class RustAhoCorasickMatcher:
    name: ClassVar[str] = "ahocorasick_rs"

    def __init__(self, patterns: Sequence[str]) -> None:
        self._ac = ahocorasick_rs.AhoCorasick(list(patterns)) if patterns else None

    def find_all(self, text: str) -> list[Match]:
        if self._ac is None:
            return []
        return self._ac.find_matches_as_indexes(text, overlapping=True)


class PyAhoCorasickMatcher:
    name: ClassVar[str] = "pyahocorasick"

    def __init__(self, patterns: Sequence[str]) -> None:
        self._ac: ahocorasick.Automaton | None = None
        if patterns:
            ac = ahocorasick.Automaton()
            for i, p in enumerate(patterns):
                ac.add_word(p, (i, len(p)))
            ac.make_automaton()
            self._ac = ac

    def find_all(self, text: str) -> list[Match]:
        if self._ac is None:
            return []
        return [(i, end - n + 1, end + 1) for end, (i, n) in self._ac.iter(text)]


MATCHERS: dict[str, type[RustAhoCorasickMatcher] | type[PyAhoCorasickMatcher]] = {
    RustAhoCorasickMatcher.name: RustAhoCorasickMatcher,
    PyAhoCorasickMatcher.name: PyAhoCorasickMatcher,
}
DEFAULT_MATCHER = RustAhoCorasickMatcher.name


def build_matcher(patterns: Sequence[str], engine: str = DEFAULT_MATCHER) -> Matcher:
    try:
        cls = MATCHERS[engine]
    except KeyError:
        raise SmsguardError(
            f"unknown matcher {engine!r}; choose one of {sorted(MATCHERS)}", code="matcher.unknown"
        ) from None
    return cls(patterns)
