"""Text normalization with a map back to the original characters.

Two views of a message are built, both with ``str.translate`` over a table computed once per
process (so the per-character work runs in C):

* the **folded** view, which lexicon matching and contact detection read: NFKC, accents
  stripped, lower case, traditional → simplified (per character, OpenCC), Cyrillic/Greek/math
  look-alikes → ASCII letters (Unicode confusables), digit look-alikes → ASCII digits
  (一二三, 壹贰叁, ①②, ⑴⑵, ０-９, 〇/零, and o/O between digits), and noise removed (spaces,
  punctuation, symbols, emoji, control/zero-width characters, combining marks).
* the **light** view, which link, signature and code rules read: NFKC and lower case only, with
  ideographic full stops read as dots and zero-width characters removed; spaces and punctuation
  stay so URLs and 【signatures】 keep their shape.

Because noise is deleted and a few characters expand (``ﬁ`` → ``fi``), indexes in a view are
not indexes in the original. :class:`OffsetMap` converts a view span back to the span of the
original text that produced it; it is only built for messages that have something to report.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources

import opencc

# Chinese numerals and financial numerals as digits. 两 and 十 are left alone: they are
# everyday words, and a phone number is never spelled with them.
_CHINESE_DIGITS = {
    "〇": "0",
    "零": "0",
    "一": "1",
    "二": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
    "幺": "1",
    "壹": "1",
    "贰": "2",
    "叁": "3",
    "肆": "4",
    "伍": "5",
    "陆": "6",
    "柒": "7",
    "捌": "8",
    "玖": "9",
}
# Symbols that stand for a word in contact-diversion spam (➕V, ➕薇): read them as the word.
_SYMBOL_WORDS = {"➕": "加", "✚": "加", "✙": "加"}
# Negative circled and squared Latin capitals, which NFKC leaves alone (🅠🅠, 🆅🆇): letters. Regional indicators
# stay noise: in pairs they are flags (🇨🇳). The classifier keeps reading these as symbols (its features
# predate this; see _features._fold_table).
ENCLOSED_LETTERS: dict[str, str] = {chr(base + i): chr(ord("a") + i) for base in (0x1F150, 0x1F170) for i in range(26)}
# How numbers are read aloud on the phone (幺 is folded everywhere already). Each is an everyday character
# (洞, 两, 拐, 勾, 么), so it is read as a digit only inside a run of digits, in the contact view below.
SPOKEN_DIGITS = {"洞": "0", "两": "2", "拐": "7", "勾": "9", "么": "1"}
# Hearts written for 信 after a WeChat cue (V❤, 微♥): deleted as symbols by the fold, read in the contact view.
_HEARTS = "❤♥♡❣💕💗💓💖💘💝💞💟🧡💛💚💙💜🖤🤍🤎🩷🩵🩶"
# Whether a text may need the contact view: a spoken digit (兩 and 麼 fold to two of them) or any character of the
# emoji plane. A class of BMP characters and one range is ~5x faster to search than one listing each astral heart.
CONTACT_TRIGGER = re.compile(
    f"[{''.join(SPOKEN_DIGITS)}兩麼{''.join(h for h in _HEARTS if ord(h) < 0x10000)}\U0001f000-\U0001ffff]"
)
_HEART = re.compile(f"[{_HEARTS}]")
_SPOKEN = re.compile(f"[{''.join(SPOKEN_DIGITS)}]")
# In the marked fold (deleted characters are NUL): a run of digits and spoken digit names, noise between them.
_SPOKEN_RUN = re.compile(f"[0-9{''.join(SPOKEN_DIGITS)}](?:\0*[0-9{''.join(SPOKEN_DIGITS)}]){{6,}}")
_SPOKEN_TABLE = str.maketrans(SPOKEN_DIGITS)
_HEART_CUE = frozenset("v微薇威维")
_NOISE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Mn", "Me", "Zs", "Zl", "Zp"})
_CJK_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00), (0x20000, 0x2FA20))
_DIGIT_O = re.compile(r"(?<=[0-9])o+(?=[0-9])")


def _is_noise(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat in _NOISE_CATEGORIES or cat[0] in "PS"


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me"))
    return unicodedata.normalize("NFKC", kept)


def _confusables() -> dict[str, str]:
    """Non-ASCII characters that look like an ASCII letter or digit, from Unicode's data."""
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    out: dict[str, str] = {}
    for target in "abcdefghijklmnopqrstuvwxyz0123456789":
        for item in data.get(target, ()) + data.get(target.upper(), ()):
            ch = item["c"]
            if len(ch) != 1 or ch.isascii() or _is_cjk(ord(ch)) or unicodedata.category(ch)[0] != "L":
                continue
            out.setdefault(ch, target)
    return out


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp < hi for lo, hi in _CJK_RANGES) or 0x3000 <= cp < 0x3400 or 0xFF00 <= cp < 0xFFF0


def _assigned_code_points() -> Iterable[int]:
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        if unicodedata.category(chr(cp)) != "Cn":
            yield cp


class _Tables:
    """The translate tables and the regexes that describe what they delete or expand."""

    def __init__(self) -> None:
        t2s = opencc.OpenCC("t2s")
        simplified: dict[str, str] = {}
        for lo, hi in _CJK_RANGES:
            for cp in range(lo, hi):
                ch = chr(cp)
                out = t2s.convert(ch)
                if out != ch and len(out) == 1:
                    simplified[ch] = out
        look_alike = _confusables()

        def fold_char(ch: str) -> str:
            if ch in _SYMBOL_WORDS:
                return _SYMBOL_WORDS[ch]
            if ch in ENCLOSED_LETTERS:
                return ENCLOSED_LETTERS[ch]
            out = []
            # Look-alikes first: lower-casing Β or В gives β or в, which Unicode lists as no Latin letter.
            for c in "".join(look_alike.get(c, c) for c in _strip_marks(ch)).lower():
                if _is_noise(c):
                    continue
                c = simplified.get(c, c)
                c = _CHINESE_DIGITS.get(c, c)
                if not c.isascii():
                    if c in look_alike:
                        c = look_alike[c]
                    elif unicodedata.digit(c, None) is not None:  # Nd and No digits: ０, ①, ⑴, ⒈, ²
                        c = str(unicodedata.digit(c))
                out.append(c)
            return "".join(out)

        def light_char(ch: str) -> str:
            if unicodedata.category(ch) in ("Cf", "Cc") and ch not in "\t\n\r":
                return ""
            out = unicodedata.normalize("NFKC", ch).lower()
            return out.replace("。", ".").replace("｡", ".")

        identity: _ListTable = list(range(_LIST_END))
        self.fold = _build(fold_char, identity)
        self.light = _build(light_char, identity)


# str.translate looks a character up about 2.5x faster in a list indexed by code point than in a dict
# (no hashing), and folding is a third of the lexicon stage's time. The lists stop at _LIST_END (BMP plus
# emoji and mathematical letters; the identity entries are shared ints); translate leaves any character
# past a list's end unchanged, so the rare text holding one is translated with the dict instead.
_LIST_END = 0x20000
_PAST_LIST = re.compile("[\U00020000-\U0010ffff]")
_ListTable = list[int | str | None]


class _Table:
    __slots__ = ("_list", "_marked_list", "mapping", "marked")

    def __init__(self, mapping: dict[int, str | None], identity: _ListTable) -> None:
        self.mapping = mapping
        # The same table with every deleted character written as NUL instead: translating with it keeps one
        # output character per input character unless something expands, so deletions can be located
        # with str.find (C speed) rather than a per-character Python loop or a huge regex character class.
        self.marked: dict[int, str] = {cp: "\0" if v is None else v for cp, v in mapping.items()}
        assert mapping.get(0, "") is None and not any(v and "\0" in v for v in mapping.values())
        self._list = _as_list(mapping, identity)
        self._marked_list = _as_list(self.marked, identity)

    def translate(self, text: str) -> str:
        return text.translate(self.mapping if _PAST_LIST.search(text) else self._list)

    def translate_marked(self, text: str) -> str:
        return text.translate(self.marked if _PAST_LIST.search(text) else self._marked_list)

    def translate_many(self, texts: list[str], *, marked: bool = False) -> list[str]:
        table, full = (self._marked_list, self.marked) if marked else (self._list, self.mapping)
        out = [t.translate(table) for t in texts]
        if _PAST_LIST.search("".join(texts)):  # one scan of the batch; fix up only the texts concerned
            out = [t.translate(full) if _PAST_LIST.search(t) else o for t, o in zip(texts, out, strict=True)]
        return out


def _as_list(mapping: dict[int, str] | dict[int, str | None], identity: _ListTable) -> _ListTable:
    table = identity.copy()
    for cp, value in mapping.items():
        if cp < _LIST_END:
            table[cp] = value
    return table


def _build(char_fn: Callable[[str], str], identity: _ListTable) -> _Table:
    mapping: dict[int, str | None] = {}
    for cp in _assigned_code_points():
        ch = chr(cp)
        out = char_fn(ch)
        if out != ch:
            mapping[cp] = out or None
    return _Table(mapping, identity)


@cache
def _tables() -> _Tables:
    return _Tables()


class OffsetMap:
    """Maps spans of a view back to spans of the original text.

    Built from the original text and the table that made the view, so it is exact whatever the
    table deleted or expanded. ``span(start, end)`` takes a half-open view span and returns the
    half-open original span covering every original character that produced it.
    """

    __slots__ = ("_deleted", "_origin")

    def __init__(self, original: str, table: _Table, marked: str | None = None) -> None:
        """``marked`` is ``original`` translated with ``table.marked``, when the caller already has it."""
        self._origin: list[int] | None = None
        self._deleted: list[int] = []
        if marked is None:
            marked = table.translate_marked(original)
        if len(marked) == len(original):
            # Nothing expanded, so marked[i] comes from original[i]. Only deletions (NULs) move indexes:
            # view index k is original index k + (deletions before it); _deleted holds, for each
            # deletion, the view index it sits before.
            deleted = self._deleted
            i = marked.find("\0")
            while i != -1:
                deleted.append(i - len(deleted))
                i = marked.find("\0", i + 1)
        else:
            origin: list[int] = []
            get = table.mapping.get
            for i, ch in enumerate(original):
                out = get(ord(ch), ch)
                if out:
                    origin.extend([i] * len(out))
            self._origin = origin

    def index(self, k: int) -> int:
        """The original index of view character ``k``."""
        if self._origin is not None:
            return self._origin[k]
        return k + bisect_right(self._deleted, k)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the non-empty view span ``[start, end)``."""
        # index() inlined: this runs once per lexicon hit and rule finding.
        if self._origin is not None:
            return self._origin[start], self._origin[end - 1] + 1
        deleted = self._deleted
        return start + bisect_right(deleted, start), end + bisect_right(deleted, end - 1)


class Normalizer:
    """Builds the folded and light views of texts; one instance serves the whole process."""

    def __init__(self) -> None:
        tables = _tables()
        self._fold = tables.fold
        self._light = tables.light

    def fold(self, text: str) -> str:
        out = self._fold.translate(text)
        if "o" in out:
            out = _DIGIT_O.sub(_zeros, out)
        return out

    def fold_many(self, texts: list[str]) -> list[str]:
        """Fold a batch; one regex pass over the joined batch instead of one per text."""
        return _digit_o_many(self._fold.translate_many(texts))

    def fold_many_marked(self, texts: list[str]) -> tuple[list[str], list[str]]:
        """``fold_many(texts)`` plus each text's *marked* fold (deleted characters kept as NUL).

        The marked fold costs no more than the plain one and lets ``fold_offsets(text, marked)`` map
        spans back without translating the text a second time.
        """
        marked = self._fold.translate_many(texts, marked=True)
        return _digit_o_many([m.replace("\0", "") for m in marked]), marked

    @property
    def fold_mapping(self) -> dict[int, str | None]:
        """The folded view's per-character table (code point → replacement, None = deleted), for code that
        must fold exactly like the engine (the classifier's feature preparation derives its table from it)."""
        return self._fold.mapping

    @property
    def light_mapping(self) -> dict[int, str | None]:
        """The light view's per-character table (code point → replacement, None = deleted)."""
        return self._light.mapping

    def light(self, text: str) -> str:
        return self._light.translate(text)

    def light_many(self, texts: list[str]) -> list[str]:
        return self._light.translate_many(texts)

    def fold_offsets(self, original: str, marked: str | None = None) -> OffsetMap:
        """Offsets of the folded view; pass the marked fold from ``fold_many_marked`` if you have it."""
        return OffsetMap(original, self._fold, marked)

    def light_offsets(self, original: str) -> OffsetMap:
        return OffsetMap(original, self._light)

    def contact_view(self, original: str, marked: str | None = None) -> tuple[str, OffsetMap] | None:
        """The folded view as contact detection reads it, or ``None`` when it equals the folded view.

        Two readings that would be wrong everywhere else: spoken digit names inside a run of at least seven
        digits and names holding four real digits (幺三八洞洞幺两拐… is 1380017…, 两个人 stays words), and a
        heart right after a WeChat cue letter (V❤ is V信). Only texts holding one of those characters pay for
        it. Every substitution is one character for one, so the map back to the original stays exact.
        """
        if CONTACT_TRIGGER.search(original) is None:
            return None
        if marked is None:
            marked = self._fold.translate_marked(original)
        if len(marked) != len(original):
            return None  # something expanded: the offsets would not line up (rare; the plain fold still runs)
        runs = [m for m in _SPOKEN_RUN.finditer(marked) if sum(c.isdigit() for c in m[0]) >= 4 and _SPOKEN.search(m[0])]
        if not runs and _HEART.search(original) is None:
            return None  # 什么, 两个: the common case, decided without copying the text
        chars = list(marked)
        changed = False
        for m in runs:
            chars[m.start() : m.end()] = m.group(0).translate(_SPOKEN_TABLE)
            changed = True
        for h in _HEART.finditer(original):
            i = h.start()
            if marked[i] == "\0":
                j = i - 1
                while j >= 0 and chars[j] == "\0":
                    j -= 1
                k = i + 1
                while k < len(chars) and chars[k] == "\0":
                    k += 1
                # 薇❤信 already spells its 信: the heart there is noise.
                if j >= 0 and chars[j] in _HEART_CUE and (k == len(chars) or chars[k] != "信"):
                    chars[i] = "信"
                    changed = True
        if not changed:
            return None
        remarked = "".join(chars)
        view = remarked.replace("\0", "")
        if "o" in view:
            view = _DIGIT_O.sub(_zeros, view)
        return view, OffsetMap(original, self._fold, remarked)


def _digit_o_many(folded: list[str]) -> list[str]:
    joined = "\x00".join(folded)  # \x00 never survives folding, so it cannot join two texts
    if "o" in joined:
        fixed = _DIGIT_O.sub(_zeros, joined)
        if fixed != joined:
            return fixed.split("\x00")
    return folded


def _zeros(m: re.Match[str]) -> str:
    return "0" * (m.end() - m.start())


@cache
def normalizer() -> Normalizer:
    """The process-wide normalizer (its tables take about half a second to build)."""
    return Normalizer()
