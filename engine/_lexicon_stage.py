"""The lexicon stage: every lexicon term found in a message, with spans in the original text.

Terms and texts are folded by the same :class:`Normalizer`, so 代 开 发 票, 代開發票 and
ｄａｉ… all meet the same automaton key. One automaton holds the sensitive terms and the
allowlist; an allowlisted occurrence suppresses every sensitive hit it overlaps.
"""

from __future__ import annotations

from bisect import bisect_right
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
        # dict.fromkeys drops a Term listed twice (the same directory given twice), so each (term, span)
        # is found once and hits need no de-duplication.
        self._payload: list[tuple[tuple[Term, ...], bool]] = [
            (tuple(dict.fromkeys(by_key.get(k, ()))), k in allow_keys) for k in keys
        ]
        self._exact = {k: tuple(dict.fromkeys(v)) for k, v in exact.items()}
        self.keys = keys
        self.matcher = build_matcher(keys, matcher)

    def scan(self, text: str, folded: str | None = None) -> list[LexiconHit]:
        return self.scan_many([text], None if folded is None else [folded])[0]

    def scan_many(
        self, texts: list[str], folded: list[str] | None = None, marked: list[str] | None = None
    ) -> list[list[LexiconHit]]:
        """Hits of every text. ``folded`` / ``marked`` are ``Normalizer.fold_many_marked(texts)``
        when the caller has already folded the batch (the engine has: its rules read the same view)."""
        if folded is None:
            folded, marked = self._norm.fold_many_marked(texts)
        if len(folded) != len(texts) or (marked is not None and len(marked) != len(texts)):
            raise ValueError(f"{len(texts)} texts but {len(folded)} folded views")
        out: list[list[LexiconHit]] = [[] for _ in texts]
        if not texts:
            return out
        # One automaton pass over the whole batch: per-call overhead dominates on short messages. No key
        # contains NUL (folding deletes it), so no match spans two texts; starts[j] is text j's offset.
        starts = [0]
        for f in folded[:-1]:
            starts.append(starts[-1] + len(f) + 1)
        by_text: dict[int, list[tuple[int, int, int]]] = {}
        for match in self.matcher.find_all("\0".join(folded)):
            j = bisect_right(starts, match[1]) - 1
            found = by_text.get(j)
            if found is None:
                by_text[j] = [match]
            else:
                found.append(match)
        if self._exact:
            exact = self._exact
            for j, f in enumerate(folded):
                if f in exact and j not in by_text:
                    by_text[j] = []
        for j, found in by_text.items():
            out[j] = self._hits(texts[j], folded[j], found, starts[j], None if marked is None else marked[j])
        return out

    def _hits(
        self, text: str, folded: str, found: list[tuple[int, int, int]], base: int, marked: str | None
    ) -> list[LexiconHit]:
        """Hits in ``text`` from the matches ``found`` in its folded view (whose offsets start at ``base``)."""
        exact = self._exact.get(folded) if self._exact else None
        if not found and not exact:
            return []
        payload = self._payload
        candidates: list[tuple[tuple[Term, ...], int, int]] = []
        allowed: list[tuple[int, int]] = []
        for index, start, end in found:
            terms, is_allow = payload[index]
            if is_allow:
                allowed.append((start - base, end - base))
            if terms:
                candidates.append((terms, start - base, end - base))
        if exact:
            candidates.append((exact, 0, len(folded)))
        if allowed:
            candidates = [c for c in candidates if not any(a < c[2] and c[1] < b for a, b in allowed)]
        if not candidates:
            return []
        span = self._norm.fold_offsets(text, marked).span
        bounds: set[int] | None = None
        hits: list[LexiconHit] = []
        for terms, start, end in candidates:
            o_start, o_end = span(start, end)
            for term in terms:
                if term.mode == "word":
                    if bounds is None:
                        bounds = self._tokenizer.boundaries(text)
                    if o_start not in bounds or o_end not in bounds:
                        continue
                hits.append(LexiconHit(term, o_start, o_end))
        return hits
