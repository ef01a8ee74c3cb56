"""Text preparation for the classifier: ONE function shared by training and serving.

``prepare(text)`` turns a message into the space-separated token string the ONNX graph reads
(its vectorizer splits on whitespace and builds token 1–3-grams, which are character n-grams
here because almost every token is one character):

* URLs (found on the engine's light view, so full-width letters and ``。`` dots are read) become
  ``<url>``. The rules judge links; the classifier only needs to know that one is there, and the
  FBS corpus replaced every link by a placeholder anyway.
* Everything else goes through the engine's fold table (lower case, simplified, look-alikes
  mapped, spaces/zero-width/private-use characters removed) with two differences:
  punctuation is kept as a few canonical marks (``！``→``!``, ``【``→``[``, any dash → ``-``, …)
  and emoji/pictographs become ``<sym>`` (repeats squeezed), because marketing punctuation is
  signal and it keeps ``123456，5`` from merging into one number; and single Chinese numerals
  stay words (the engine reads 一 as 1 so that 加V一三八… is a phone number, but for the
  classifier 一定, 统一 and 第一 are words; runs of four or more are still read as a number).
  Measured against the engine's plain fold on the dev split and on tests/data's golden sets, this
  scored better on both (models/MODEL_CARD.md), with one known cost: the FBS fraud corpus has no
  punctuation, so a phishing text signed 【某银行】 looks more like the bank's own notices.
* Digit runs become a shape token by length: ``<n>`` (1–4 digits: prices, times, dates) and
  ``<nn>`` (5+: phones, QQ, codes, orders). The corpora mask digits as ``x`` one for one (every
  digit in 80w spam, runs of 5+ elsewhere), so a run of ``x`` that is not part of a Latin word
  is read as digits too: masked and real numbers give the same token.
* ``<s>`` and ``</s>`` mark the ends, so short fragments and openings/closings are features.
* jieba is not used: it costs ~50 µs a message, 5x this whole function, and word 1–2-grams added
  nothing over character n-grams on the dev split.

Change anything here and ``FEATURES_VERSION`` must change: the model records the version it was
trained with and the runtime refuses a model whose version differs. ``fingerprint()`` hashes the
output on fixed probe texts; the model records it too, and a test fails when a change to the
engine's normalizer changes what the model would see.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from functools import cache

import opencc

from ._normalize import ENCLOSED_LETTERS, normalizer

FEATURES_VERSION = "chars-punct-v1"
MAX_CHARS = 500  # a provider's maximum message length; longer texts are cut before preparing

NUM_SHORT = "<n>"
NUM_LONG = "<nn>"
URL = "<url>"
SYM = "<sym>"
BOS = "<s>"
EOS = "</s>"

# Private-use characters never survive folding, so they stand for the shape tokens until the
# final join (one str.translate instead of token-by-token work).
_P_SHORT, _P_LONG, _P_URL, _P_SYM = "\ue000", "\ue001", "\ue002", "\ue003"
_PLACEHOLDERS = {ord(_P_SHORT): NUM_SHORT, ord(_P_LONG): NUM_LONG, ord(_P_URL): URL, ord(_P_SYM): SYM}

_TLDS = (
    "com|cn|net|org|cc|top|xyz|vip|info|me|io|co|tk|ly|in|so|la|biz|club|site|online|shop|app|link|live|"
    "wang|ren|ltd|pub|icu|fun|ink|im|tv|hk|tw"
)
_URL_STOP = r"\s<>\"'，。、；！？（）【】《》「」{}|\\^`\u4e00-\u9fff"
_URL = re.compile(
    rf"(?:https?://|www\.)[^{_URL_STOP}]+"
    rf"|(?<![a-z0-9@._-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLDS})(?![a-z0-9-])(?:[/:?#][^{_URL_STOP}]*)?"
)
_CN_NUMERALS = "〇零一二三四五六七八九幺壹贰叁肆伍陆柒捌玖"
# Digits and mask x's, or a run of 4+ Chinese numerals; _shape decides what each run is.
_NUMBER = re.compile(rf"[0-9x]+|[{_CN_NUMERALS}0-9]{{4,}}")
_LATIN = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGIT_O = re.compile(r"(?<=[0-9])o+(?=[0-9])")
# A repeated mark or symbol (!!!, ★★★, ……) says no more than one.
_REPEAT = re.compile(r"([^\w\ue000-\ue002])\1+")
_CANONICAL = {"，": ",", "、": ",", "。": ".", "．": ".", "：": ":", "；": ";", "！": "!", "？": "?"}
_OPEN, _CLOSE = "[【〖［〔", "]】〗］〕"

# str.translate is ~2.5x faster with a list indexed by code point than with a dict (the engine's
# normalizer does the same); characters past the list are rare and take the dict.
_LIST_END = 0x20000
_PAST_LIST = re.compile("[\U00020000-\U0010ffff]")


def _mark(ch: str) -> str | None:
    """The canonical mark for a punctuation or symbol character (None: drop it)."""
    cat = unicodedata.category(ch)
    if cat == "So":
        return _P_SYM
    n = unicodedata.normalize("NFKC", ch)
    if len(n) != 1:
        return None
    n = _CANONICAL.get(n, n)
    if n == "#":
        return "＃"  # "#" is the ONNX tokenizer's pad value: a real "#" token would be counted in padding
    if cat == "Pd":
        return "-"
    if cat in ("Pi", "Pf") or n in "\"'":
        return '"'
    if cat == "Ps":
        return "[" if n in _OPEN else "("
    if cat == "Pe":
        return "]" if n in _CLOSE else ")"
    return None if n.isspace() else n


@cache
def _fold_table() -> dict[int, str | None]:
    """The engine's fold table, keeping punctuation as marks and Chinese numerals as characters."""
    table = dict(normalizer().fold_mapping)  # the engine's own table: one fold, not a copy that can drift
    t2s = opencc.OpenCC("t2s")
    for cp, out in list(table.items()):
        ch = chr(cp)
        if out is None and unicodedata.category(ch)[0] in "PS":
            table[cp] = _mark(ch)
        elif out is not None and len(out) == 1 and out.isdigit() and unicodedata.digit(ch, None) is None:
            kept = t2s.convert(ch)
            if kept == ch:
                del table[cp]  # not in the table: translate leaves it as it is
            elif kept in _CN_NUMERALS:
                table[cp] = kept  # traditional form → simplified numeral
    for ch in ENCLOSED_LETTERS:  # letters to the engine's fold since issue 21; symbols to this model, as trained
        table[ord(ch)] = _mark(ch)
    for ch in "_^`":  # ASCII marks the fold table leaves alone
        table.setdefault(ord(ch), ch)
    return table


@cache
def _fold_list() -> list[int | str | None]:
    table: list[int | str | None] = list(range(_LIST_END))
    for cp, out in _fold_table().items():
        if cp < _LIST_END:
            table[cp] = out
    return table


def _shape(m: re.Match[str]) -> str:
    run = m.group(0)
    if run[0] in _CN_NUMERALS or not run.isalpha():  # Chinese-numeral run, or holds a digit
        return _P_LONG if len(run) >= 5 else _P_SHORT
    # only x's: a mask unless glued to a Latin word (xbox, wxid, taxi, …)
    s, e = m.start(), m.end()
    text = m.string
    if (s > 0 and text[s - 1] in _LATIN) or (e < len(text) and text[e] in _LATIN):
        return run
    return _P_LONG if len(run) >= 5 else _P_SHORT


def _fold(text: str) -> str:
    out = text.translate(_fold_table() if _PAST_LIST.search(text) else _fold_list())
    if "o" in out:
        out = _DIGIT_O.sub(lambda m: "0" * len(m.group(0)), out)
    return _NUMBER.sub(_shape, out)


def prepare(text: str) -> str:
    """The classifier's input for one message: space-separated tokens (see the module doc)."""
    light = normalizer().light(text[:MAX_CHARS])
    if "." not in light:  # every URL form the pattern knows has a dot: skip the search
        folded = _fold(light)
    else:
        parts: list[str] = []
        pos = 0
        for m in _URL.finditer(light):
            parts.append(_fold(light[pos : m.start()]))
            parts.append(_P_URL)
            pos = m.end()
        parts.append(_fold(light[pos:]))
        folded = "".join(parts)
    folded = _REPEAT.sub(r"\1", folded)
    if not folded:
        return f"{BOS} {EOS}"
    return f"{BOS} {' '.join(folded)} {EOS}".translate(_PLACEHOLDERS)


def prepare_many(texts: Sequence[str]) -> list[str]:
    return [prepare(t) for t in texts]


# Texts whose preparation exercises every step: widths, traditional characters, look-alikes,
# numerals, masks, links, emoji, invisible characters.
PROBES = (
    "【某银行】您的验证码是123456，5分钟内有效。",
    "亲，今天开始做活动！！！★★★ xxx减xx的现金！x.x折 😀😀……",
    "0527—84563555 点击 http://t.cn/R7YQqO0 领取，或访问ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ/abc",
    "加V一三八一二三四五六七八 贰零贰肆年 ①③⑧ 1o0 xbox taxi xxxxxx@qq.com #话题#",
    "澳門新葡京線上娛樂城 首充送50% 體驗金",
    "ＶＩＰ会员 Ꮃechat：ab_12 ｑｑ：１２３４５６７８９",
    "零\u200b售\u200d价\ufeff 9.9元 (限时) [详情] 《回T退订》 “好” ‘好’",
    "Hello, WORLD!! FREE entry 2 win £1000 txt 87121",
    "",
    "   ",
)


def fingerprint() -> str:
    """SHA-256 (16 hex) of prepare() over PROBES: changes whenever what the model would see changes."""
    joined = "\n".join(prepare(t) for t in PROBES)
    return hashlib.sha256(joined.encode()).hexdigest()[:16]
