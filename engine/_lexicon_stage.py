"""The lexicon stage: every lexicon term found in a message, with spans in the original text.

Terms and texts are folded by the same :class:`Normalizer`, so 代 开 发 票, 代開發票 and
ｄａｉ… all meet the same automaton key. One automaton holds the sensitive terms and the
allowlist; an allowlisted occurrence suppresses every sensitive hit it overlaps.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ._errors import LexiconError
from ._lexicon import Lexicon, Term
from ._matcher import DEFAULT_MATCHER, build_matcher
from ._normalize import Normalizer, normalizer
from ._tokenize import Tokenizer


@dataclass(frozen=True, slots=True)
class LexiconHit:
    term: Term
    start: int  # in the original text
    end: int


class LexiconStage:
    """A compiled lexicon. Immutable: a reload builds a new stage and swaps the reference."""

    def __init__(
        self,
        lexicon: Lexicon,
        *,
        matcher: str = DEFAULT_MATCHER,
        norm: Normalizer | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.lexicon = lexicon
        self.version = lexicon.version
        self._norm = self.normalizer = norm or normalizer()
        self._tokenizer = tokenizer or Tokenizer()
        by_key: dict[str, list[Term]] = defaultdict(list)
        allow_keys: set[str] = set()
        exact: dict[str, list[Term]] = defaultdict(list)
        for term in lexicon.terms + lexicon.allow:
            key = self._norm.fold(term.term)
            if not key:
                raise LexiconError(
                    f"term {term.term!r} is nothing but noise characters once normalized",
                    where=term.where,
                    code="lexicon.empty_after_normalization",
                )
            if term.category == "allow":
                allow_keys.add(key)
            elif term.mode == "exact":
                exact[key].append(term)
            else:
                by_key[key].append(term)
        keys = sorted(set(by_key) | allow_keys)
        self._payload: list[tuple[tuple[Term, ...], bool]] = [(tuple(by_key.get(k, ())), k in allow_keys) for k in keys]
        self._exact = {k: tuple(v) for k, v in exact.items()}
        self.keys = keys
        self.matcher = build_matcher(keys, matcher)

    def scan(self, text: str, folded: str | None = None) -> list[LexiconHit]:
        return self._hits(text, self._norm.fold(text) if folded is None else folded)

    def scan_many(self, texts: list[str], folded: list[str] | None = None) -> list[list[LexiconHit]]:
        if folded is None:
            folded = self._norm.fold_many(texts)
        return [self._hits(t, f) for t, f in zip(texts, folded, strict=True)]

    def _hits(self, text: str, folded: str) -> list[LexiconHit]:
        found = self.matcher.find_all(folded)
        exact = self._exact.get(folded) if self._exact else None
        if not found and not exact:
            return []
        payload = self._payload
        candidates: list[tuple[Term, int, int]] = []
        allowed: list[tuple[int, int]] = []
        for index, start, end in found:
            terms, is_allow = payload[index]
            if is_allow:
                allowed.append((start, end))
            for term in terms:
                candidates.append((term, start, end))
        if exact:
            candidates.extend((term, 0, len(folded)) for term in exact)
        if allowed:
            candidates = [
                c for c in candidates if not any(a_start < c[2] and c[1] < a_end for a_start, a_end in allowed)
            ]
        if not candidates:
            return []
        offsets = self._norm.fold_offsets(text)
        bounds: set[int] | None = None
        hits: list[LexiconHit] = []
        seen: set[tuple[str, int, int]] = set()
        for term, start, end in candidates:
            o_start, o_end = offsets.span(start, end)
            if term.mode == "word":
                if bounds is None:
                    bounds = self._tokenizer.boundaries(text)
                if o_start not in bounds or o_end not in bounds:
                    continue
            key = (term.where, o_start, o_end)
            if key not in seen:
                seen.add(key)
                hits.append(LexiconHit(term, o_start, o_end))
        return hits
