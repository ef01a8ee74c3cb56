"""The lexicon stage: every lexicon term found in a message, with spans in the original text.

Terms and texts are folded by the same :class:`Normalizer`, so 代 开 发 票, 代開發票 and
ｄａｉ… all meet the same automaton key. One automaton holds the sensitive terms and the
allowlist; an allowlisted occurrence suppresses every sensitive hit it overlaps.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import chain, repeat
from typing import NamedTuple

import numpy as np

from smsguard.core import LexiconError

from ._lexicon import Lexicon, Term
from ._matcher import DEFAULT_MATCHER, build_matcher
from ._normalize import Normalizer, normalizer
from ._tokenize import Tokenizer


class LexiconHit(NamedTuple):
    """A lexicon term found in a message. A tuple: one is made per hit on the hot path, and a tuple is
    about twice as fast to build as a frozen dataclass."""

    term: Term
    start: int  # in the original text
    end: int


class LexiconMatches(NamedTuple):
    """A batch's hits as columns, in ``scan_many``'s order: text ``j``'s hits are rows ``bounds[j]:bounds[j + 1]``.
    The engine builds its reasons from these columns directly, so no per-hit object is made twice."""

    term_ids: np.ndarray  # int64, index into LexiconStage.terms
    starts: np.ndarray  # int64, in the original text
    ends: np.ndarray
    bounds: list[int]  # len(texts) + 1 row offsets


_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # (text slot, term id, start, end) per hit


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
        # Per key: its terms when none needs a word-boundary check (the common case), else None.
        self._plain_terms: list[tuple[Term, ...] | None] = [
            None if any(t.mode == "word" for t in terms) else terms for terms, _ in self._payload
        ]
        self._allow_mask = np.array([is_allow for _, is_allow in self._payload] or [False], dtype=bool)
        # The same per key as arrays, so the common hit (no allowlist, no word check) is handled for a whole
        # batch at once: key -> has terms / needs no word check / how many plain terms / where they start in
        # _flat_terms (an object array: fancy indexing picks every hit's Term in C).
        self._has_terms = np.array([bool(terms) for terms, _ in self._payload] or [False], dtype=bool)
        self._is_plain = np.array([t is not None for t in self._plain_terms] or [False], dtype=bool)
        counts = [len(t) if t is not None else 0 for t in self._plain_terms] or [0]
        self._term_count = np.array(counts, dtype=np.int64)
        self._term_first = np.zeros(len(counts), dtype=np.int64)
        np.cumsum(counts[:-1], out=self._term_first[1:])
        self._exact = {k: tuple(dict.fromkeys(v)) for k, v in exact.items()}
        # Every Term object a hit can name gets an id (by identity: a hit names the very object it always did).
        self._tid: dict[int, int] = {}
        terms_list: list[Term] = []
        for group in chain((t for t, _ in self._payload), self._exact.values()):
            for term in group:
                if id(term) not in self._tid:
                    self._tid[id(term)] = len(terms_list)
                    terms_list.append(term)
        self.terms: tuple[Term, ...] = tuple(terms_list)
        """Every term a hit can name; ``LexiconMatches.term_ids`` index it."""
        self._term_objs = np.empty(len(terms_list), dtype=object)
        self._term_objs[:] = terms_list
        flat = [self._tid[id(term)] for t in self._plain_terms if t is not None for term in t]
        self._flat_ids = np.array(flat, dtype=np.int64)
        self.keys = keys
        self.matcher = build_matcher(keys, matcher)

    def scan(self, text: str, folded: str | None = None) -> list[LexiconHit]:
        return self.scan_many([text], None if folded is None else [folded])[0]

    def scan_many(
        self, texts: list[str], folded: list[str] | None = None, marked: list[str] | None = None
    ) -> list[list[LexiconHit]]:
        """Hits of every text. ``folded`` / ``marked`` are ``Normalizer.fold_many_marked(texts)``
        when the caller has already folded the batch (the engine has: its rules read the same view)."""
        m = self.scan_columns(texts, folded, marked)
        if not m.term_ids.size:
            return [[] for _ in texts]
        columns = self._term_objs[m.term_ids].tolist(), m.starts.tolist(), m.ends.tolist()
        hits = list(map(tuple.__new__, repeat(LexiconHit), zip(*columns, strict=True)))
        b = m.bounds
        return [hits[b[j] : b[j + 1]] for j in range(len(texts))]

    def scan_columns(
        self, texts: list[str], folded: list[str] | None = None, marked: list[str] | None = None
    ) -> LexiconMatches:
        """``scan_many`` as columns (see :class:`LexiconMatches`): what the engine reads."""
        if folded is None:
            folded, marked = self._norm.fold_many_marked(texts)
        if len(folded) != len(texts) or (marked is not None and len(marked) != len(texts)):
            raise ValueError(f"{len(texts)} texts but {len(folded)} folded views")
        parts: list[_Part] = []
        if not texts:
            return _assemble(parts, 0)
        if marked is None:
            marked = self._norm.fold_many_marked(texts)[1]
        # Texts where a character expanded (ﬁ → fi) break the one-to-one raw/marked indexes the batch path
        # relies on; they are rare and take the per-text path.
        # A marked fold is never shorter than its text (deletions stay as NUL), so equal total lengths mean no
        # text expanded: two sums in C instead of a Python comparison per text.
        if sum(map(len, texts)) == sum(map(len, marked)):
            self._scan_plain(texts, folded, marked, parts, None)
            return _assemble(parts, len(texts))
        plain = [j for j, (t, m) in enumerate(zip(texts, marked, strict=True)) if len(t) == len(m)]
        rows: list[tuple[int, int, int, int]] = []
        tid = self._tid
        for j in sorted(set(range(len(texts))) - set(plain)):
            for h in self._hits(texts[j], folded[j], self.matcher.find_all(folded[j]), 0, marked[j]):
                rows.append((j, tid[id(h.term)], h.start, h.end))
        if rows:
            parts.append(_columns(rows))
        if plain:
            pick = [texts[j] for j in plain], [folded[j] for j in plain], [marked[j] for j in plain]
            self._scan_plain(*pick, parts, np.array(plain, dtype=np.int64))
        return _assemble(parts, len(texts))

    def _scan_plain(
        self, texts: list[str], folded: list[str], marked: list[str], parts: list[_Part], slots: np.ndarray | None
    ) -> None:
        """The batch path: one automaton pass over the joined batch and vectorized offset mapping.

        Per-hit Python work is what limits the stage (most messages hit a large lexicon), so spans are
        mapped for all hits at once: in the marked fold, deleted characters are NUL and every other
        character is one folded character, so the positions of the non-NUL characters of the joined
        marked batch ARE the original index of each folded character (nothing expanded here).
        ``slots`` maps these texts to the caller's batch (None: the same).
        """
        joined = "\x01".join(folded)  # folding deletes \x01, so no key can match across two texts
        matches = self.matcher.find_all(joined)
        exact = [j for j, f in enumerate(folded) if f in self._exact] if self._exact else []
        if not matches and not exact:
            return
        codes = np.frombuffer("\x01".join(marked).encode("utf-32-le"), dtype=np.uint32)
        kept = np.flatnonzero(codes)  # index in the joined marked (= raw) batch of each joined folded char
        raw_start = _starts(texts)
        fold_start = _starts(folded)
        payload = self._payload
        allowed: dict[int, list[tuple[int, int]]] = {}
        rows: list[tuple[int, tuple[Term, ...], int, int, int, int]] = []  # need an allowlist or word check
        if matches:
            # fromiter over the flattened tuples: about twice as fast as np.array's shape discovery
            m = np.fromiter(chain.from_iterable(matches), dtype=np.int64, count=3 * len(matches)).reshape(-1, 3)
            index, starts, ends = m[:, 0], m[:, 1], m[:, 2]
            text_of = np.searchsorted(fold_start, starts, side="right") - 1
            base = raw_start[text_of]
            o_starts = kept[starts] - base
            o_ends = kept[ends - 1] + 1 - base
            f_base = fold_start[text_of]
            is_allow = self._allow_mask[index]
            text_allowed = np.zeros(len(texts), dtype=bool)
            if is_allow.any():
                for j, f_start, f_end in zip(
                    text_of[is_allow].tolist(),
                    (starts - f_base)[is_allow].tolist(),
                    (ends - f_base)[is_allow].tolist(),
                    strict=True,
                ):
                    allowed.setdefault(j, []).append((f_start, f_end))
                text_allowed[text_of[is_allow]] = True
            # Plain keys in texts without an allowlisted occurrence: every hit is final, taken for all at once.
            fast = self._is_plain[index] & ~text_allowed[text_of]
            self._plain_hits(np.flatnonzero(fast), index, text_of, o_starts, o_ends, parts, slots)
            slow = np.flatnonzero(~fast & self._has_terms[index])
            if slow.size:
                f_slow = f_base[slow]
                for j, i, o_start, o_end, f_start, f_end in zip(
                    text_of[slow].tolist(),
                    index[slow].tolist(),
                    o_starts[slow].tolist(),
                    o_ends[slow].tolist(),
                    (starts[slow] - f_slow).tolist(),
                    (ends[slow] - f_slow).tolist(),
                    strict=True,
                ):
                    rows.append((j, payload[i][0], o_start, o_end, f_start, f_end))
        for j in exact:
            f0 = int(fold_start[j])
            o_start = int(kept[f0] - raw_start[j])
            o_end = int(kept[f0 + len(folded[j]) - 1] + 1 - raw_start[j])
            rows.append((j, self._exact[folded[j]], o_start, o_end, 0, len(folded[j])))
        bounds: dict[int, set[int]] = {}
        tid = self._tid
        kept_rows: list[tuple[int, int, int, int]] = []
        for j, terms, o_start, o_end, f_start, f_end in rows:
            allow = allowed.get(j)
            if allow is not None and any(a < f_end and f_start < b for a, b in allow):
                continue
            slot = j if slots is None else int(slots[j])
            for term in terms:
                if term.mode == "word":
                    words = bounds.get(j)
                    if words is None:
                        words = bounds[j] = self._tokenizer.boundaries(texts[j])
                    if o_start not in words or o_end not in words:
                        continue
                kept_rows.append((slot, tid[id(term)], o_start, o_end))
        if kept_rows:
            parts.append(_columns(kept_rows))

    def _plain_hits(
        self,
        picked: np.ndarray,
        index: np.ndarray,
        text_of: np.ndarray,
        o_starts: np.ndarray,
        o_ends: np.ndarray,
        parts: list[_Part],
        slots: np.ndarray | None,
    ) -> None:
        """The hits of the matches ``picked`` (plain keys, no allowlist in their text), one per term of the key,
        in match order: numpy picks every hit's term id and span at once."""
        if not picked.size:
            return
        keys = index[picked]
        counts = self._term_count[keys]
        if counts.min() == 1 and counts.max() == 1:  # the common case: one term per key
            term_at = self._term_first[keys]
        else:  # expand each match into its key's terms, in the key's order
            picked = np.repeat(picked, counts)
            ends = np.cumsum(counts)
            within = np.arange(int(ends[-1])) - np.repeat(ends - counts, counts)
            term_at = np.repeat(self._term_first[keys], counts) + within
            if not picked.size:
                return
        texts_of = text_of[picked]
        parts.append(
            (texts_of if slots is None else slots[texts_of], self._flat_ids[term_at], o_starts[picked], o_ends[picked])
        )

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


def _starts(texts: list[str]) -> np.ndarray:
    """Where each text starts in ``"\x01".join(texts)``."""
    out = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        np.cumsum(np.fromiter(map(len, texts[:-1]), dtype=np.int64, count=len(texts) - 1) + 1, out=out[1:])
    return out


def _columns(rows: list[tuple[int, int, int, int]]) -> _Part:
    a = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3]


def _assemble(parts: list[_Part], n: int) -> LexiconMatches:
    """One column set grouped by text; a stable sort keeps each text's hits in the order the parts hold them
    (the plain hits of a text in match order, then those that needed an allowlist, word or exact check)."""
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return LexiconMatches(empty, empty, empty, [0] * (n + 1))
    if len(parts) == 1:
        slot, tids, starts, ends = parts[0]
    else:
        slot, tids, starts, ends = (np.concatenate(c) for c in zip(*parts, strict=True))
    if slot.size > 1 and bool((slot[1:] < slot[:-1]).any()):
        order = np.argsort(slot, kind="stable")
        slot, tids, starts, ends = slot[order], tids[order], starts[order], ends[order]
    bounds = np.searchsorted(slot, np.arange(n + 1)).tolist()
    return LexiconMatches(tids, starts, ends, bounds)
