"""Normalization: the folded and light views, and the offset maps back to the original text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsguard.engine import Normalizer, OffsetMap, normalizer
from smsguard.engine._normalize import _tables

# Characters that exercise every branch of the tables: CJK (simplified and traditional), full-width
# forms, emoji (with variation selectors and joiners), zero-width and combining marks, Cyrillic /
# Greek / mathematical look-alikes, circled and parenthesised digits, Chinese numerals, and
# characters whose normalization expands (ﬁ, ㈱, ㎡, ½, ǅ, ⑽) or deletes entirely.
_INTERESTING = (
    "代开發票微信加薇回退訂国際臺灣测试"
    "ＡＢｃｄ０１９，。！？【】《》「」　"
    "😀👍❤️\ufe0f\u200d🇨🇳"
    "\u200b\u200c\u200d\u2060\ufeff\u00ad"
    "e\u0301a\u0308\u20dd"
    "аеорсхуАВЕКМНОРСТХѕӏ"
    "αβγδεικνοπρτυχΣΝΙΡ"
    "𝐀𝐛𝟏𝔞𝒷𝘃"
    "①⑩⑳⑴⑽⒈㊿⓪²₁"
    "一二三四五六七八九〇零壹贰叁肆伍陆柒捌玖幺"
    "ﬁﬂ㈱㎡½ǅ℡™Ⅻİß"
    "oO0123456789 .-_/:@"
    "𠀀\U0002f800\U000e0067\U000e0100"  # past the translate lists' end: CJK ext B, compat, tag, selector
)
texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(_INTERESTING),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=24,
)
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    return normalizer()


def _same_digits(s: str) -> str:
    # o/O → 0 depends on the neighbours (only inside digit runs), so a slice folded on its own
    # may keep an "o" the whole text turned into "0"; compare modulo that one context rule.
    return s.replace("0", "o")


def _assert_covers(original: str, view: str, offsets: OffsetMap, fold_slice) -> None:
    for a in range(len(view)):
        for b in range(a + 1, len(view) + 1):
            start, end = offsets.span(a, b)
            assert 0 <= start < end <= len(original), (original, view, a, b, start, end)
            assert view[a:b] in fold_slice(original[start:end]), (original, view, a, b, start, end)


# -- offset maps: property tests ---------------------------------------------------------------


@_SETTINGS
@given(text=texts)
def test_fold_offsets_cover_every_span(text: str) -> None:
    norm = normalizer()
    folded = norm.fold(text)
    _assert_covers(text, _same_digits(folded), norm.fold_offsets(text), lambda s: _same_digits(norm.fold(s)))


@_SETTINGS
@given(text=texts)
def test_light_offsets_cover_every_span(text: str) -> None:
    norm = normalizer()
    _assert_covers(text, norm.light(text), norm.light_offsets(text), norm.light)


@_SETTINGS
@given(text=texts)
def test_offset_spans_are_monotonic(text: str) -> None:
    # A later view character never comes from an earlier original character.
    norm = normalizer()
    folded = norm.fold(text)
    offsets = norm.fold_offsets(text)
    starts = [offsets.index(k) for k in range(len(folded))]
    assert starts == sorted(starts)


@_SETTINGS
@given(batch=st.lists(texts, max_size=4))
def test_fast_translate_equals_the_reference_tables(batch: list[str]) -> None:
    # Translation runs on code-point lists with a dict fallback for characters past their end; both
    # must give exactly what the reference dict tables give.
    tables = _tables()
    for table in (tables.fold, tables.light):
        assert table.translate_many(batch) == [t.translate(table.mapping) for t in batch]
        assert table.translate_many(batch, marked=True) == [t.translate(table.marked) for t in batch]
        for text in batch:
            assert table.translate(text) == text.translate(table.mapping)
            assert table.translate_marked(text) == text.translate(table.marked)


@_SETTINGS
@given(batch=st.lists(texts, max_size=8))
def test_fold_many_equals_fold_each(batch: list[str]) -> None:
    norm = normalizer()
    assert norm.fold_many(batch) == [norm.fold(t) for t in batch]


@_SETTINGS
@given(batch=st.lists(texts, max_size=8))
def test_fold_many_marked_matches_fold_many(batch: list[str]) -> None:
    # The marked fold (deletions kept as NUL) gives the same folded views and the same offset maps.
    norm = normalizer()
    folded, marked = norm.fold_many_marked(batch)
    assert folded == norm.fold_many(batch)
    for text, view, mark in zip(batch, folded, marked, strict=True):
        fresh, given_marked = norm.fold_offsets(text), norm.fold_offsets(text, mark)
        spans = [(a, b) for a in range(len(view)) for b in range(a + 1, min(len(view), a + 4) + 1)]
        assert [fresh.span(a, b) for a, b in spans] == [given_marked.span(a, b) for a, b in spans]


def test_fold_many_keeps_digit_o_inside_each_text(norm: Normalizer) -> None:
    # The batch is folded as one joined string; an "o" at a text's edge must not see the neighbour's digits.
    assert norm.fold_many(["1o", "o2", "1o2", ""]) == ["1o", "o2", "102", ""]


def test_offsets_of_evasion_point_at_original_characters(norm: Normalizer) -> None:
    text = "请 代 开 發 票！"
    folded = norm.fold(text)
    assert folded == "请代开发票"
    assert norm.fold_offsets(text).span(1, 5) == (2, 9)  # 代 … 票, spaces included


def test_offsets_through_expanding_characters(norm: Normalizer) -> None:
    text = "x㈱ﬁ㎡y"
    folded = norm.fold(text)
    assert folded == "x株fim2y"
    offsets = norm.fold_offsets(text)
    assert offsets.span(2, 3) == (2, 3)  # "f" comes from ﬁ
    assert offsets.span(2, 4) == (2, 3)  # "fi" is the one original ﬁ
    assert offsets.span(4, 6) == (3, 4)  # "m2" is ㎡
    assert offsets.span(0, len(folded)) == (0, len(text))


# -- each normalization, by example ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full-width → half-width (NFKC)
        ("ｖｉｐ会员", "vip会员"),
        ("Hello WORLD", "helloworld"),  # case folding (and the space is noise)
        ("Straße", "straße"),
        ("開發票", "开发票"),  # traditional → simplified
        ("國際臺灣", "国际台湾"),
        ("回T退訂", "回t退订"),
    ],
)
def test_nfkc_case_and_simplified(norm: Normalizer, text: str, folded: str) -> None:
    assert norm.fold(text) == folded


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("一二三四五六七八九", "123456789"),
        ("壹贰叁肆伍陆柒捌玖", "123456789"),
        ("幺三八", "138"),
        ("〇零", "00"),
        ("①②③⑩⑳", "1231020"),
        ("⑴⑵⑶", "123"),
        ("⒈⒉", "12"),
        ("０１２３４５６７８９", "0123456789"),
        ("²₁⓪㊿", "21050"),
        ("一三八零零一三八零零零", "13800138000"),
    ],
)
def test_digit_look_alikes(norm: Normalizer, text: str, folded: str) -> None:
    assert norm.fold(text) == folded


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("1o2", "102"),
        ("1O2", "102"),
        ("1oo2", "1002"),
        ("1 o 2", "102"),  # noise is removed first, so the o is inside the run
        ("o12", "o12"),  # o only inside a digit run, not at its edge
        ("12o", "12o"),
        ("foo", "foo"),
        ("good", "good"),
    ],
)
def test_letter_o_is_zero_only_inside_digit_runs(norm: Normalizer, text: str, folded: str) -> None:
    assert norm.fold(text) == folded


def test_two_and_ten_stay_words(norm: Normalizer) -> None:
    # 两 and 十 are everyday words and never spell a phone number.
    assert norm.fold("两十") == "两十"


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("аеорсху", "aeopcxy"),  # Cyrillic
        ("ѕех", "sex"),
        ("νιρ", "vip"),  # Greek
        ("𝐛𝐚𝐧𝐤", "bank"),  # mathematical bold
        ("𝔟𝔞𝔫𝔨", "bank"),  # mathematical fraktur
        ("𝒷𝒶𝓃𝓀", "bank"),  # mathematical script
        ("𝟏𝟐𝟑", "123"),
        ("Ⓑⓐⓝⓚ", "bank"),  # circled letters
        ("ÀÉÎÕÜ", "aeiou"),  # accents stripped
    ],
)
def test_letter_look_alikes(norm: Normalizer, text: str, folded: str) -> None:
    assert norm.fold(text) == folded


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("代 开\t发\n票", "代开发票"),  # spaces, tabs, newlines
        ("代　开", "代开"),  # ideographic space
        ("代.开,发!票?", "代开发票"),  # ASCII punctuation
        ("代，开。发！票？【】《》“”", "代开发票"),  # CJK punctuation
        ("代★开☆发♥票$€¥", "代开发票"),  # symbols
        ("代😀开👍🏻发❤️票🇨🇳", "代开发票"),  # emoji, modifiers, variation selectors, flags
        ("代\u200b开\u200c发\u200d票\ufeff\u2060", "代开发票"),  # zero-width characters
        ("a\u0301b\u0308c\u20dd", "abc"),  # combining marks
        ("\x00代\x07开\x1f", "代开"),  # control characters
    ],
)
def test_noise_removal(norm: Normalizer, text: str, folded: str) -> None:
    assert norm.fold(text) == folded


def test_symbol_words(norm: Normalizer) -> None:
    # ➕V and ➕薇 are how contact spam writes 加V / 加薇.
    assert norm.fold("➕V") == "加v"
    assert norm.fold("✚薇") == "加薇"


@pytest.mark.parametrize(
    ("text", "folded"),
    [("ﬁnance", "finance"), ("㈱", "株"), ("㎡", "m2"), ("ǅ", "dz"), ("℡", "tel")],
)
def test_expanding_characters(norm: Normalizer, text: str, folded: str) -> None:
    assert norm.fold(text) == folded


def test_light_view_keeps_shape(norm: Normalizer) -> None:
    text = "【示例】访问 ＷＷＷ．Example。COM/a?b=1 ，谢谢\u200b"
    assert norm.light(text) == "【示例】访问 www.example.com/a?b=1 ,谢谢"


def test_light_view_keeps_whitespace_controls(norm: Normalizer) -> None:
    assert norm.light("a\tb\nc\u200bd") == "a\tb\ncd"


def test_characters_past_the_fast_tables(norm: Normalizer) -> None:
    # U+2F800 (CJK compatibility supplement) is 丽 once normalized; a tag character is deleted.
    assert norm.fold("代\U0002f800开\U000e0067") == "代丽开"
    assert norm.fold_many(["\U0002f800", "a b"]) == ["丽", "ab"]
    text = "𠀀 代 开"
    assert norm.fold_offsets(text).span(1, 3) == (2, 5)
