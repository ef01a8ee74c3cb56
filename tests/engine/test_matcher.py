"""One contract for every Aho-Corasick backend in ``engine.MATCHERS``.

The contract, as the lexicon stage uses it: given distinct, non-empty patterns, ``find_all`` returns
every occurrence of every pattern, overlapping and nested ones included, as ``(index, start, end)``
character offsets (code points, so non-BMP characters count as one).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsguard.core import SmsguardError
from smsguard.engine import DEFAULT_MATCHER, MATCHERS, build_matcher
from smsguard.engine._matcher import Match


def naive(patterns: list[str], text: str) -> list[Match]:
    return sorted(
        (i, s, s + len(p))
        for i, p in enumerate(patterns)
        for s in range(len(text) - len(p) + 1)
        if text.startswith(p, s)
    )


@pytest.fixture(scope="module", params=sorted(MATCHERS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_registry() -> None:
    assert set(MATCHERS) == {"ahocorasick_rs", "pyahocorasick"}
    assert DEFAULT_MATCHER in MATCHERS
    for name, cls in MATCHERS.items():
        assert cls.name == name


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(SmsguardError, match="unknown matcher"):
        build_matcher(["a"], "grep")


# Small alphabets make overlaps and nesting frequent; CJK and a non-BMP character keep offsets honest.
_ALPHABETS = ("ab", "abc", "代开发票", "a代😀")


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[str], str]:
    alphabet = draw(st.sampled_from(_ALPHABETS))
    patterns = draw(st.lists(st.text(alphabet, min_size=1, max_size=4), unique=True, max_size=8))
    text = draw(st.text(alphabet, max_size=40))
    return patterns, text


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_equals_naive_search(backend: str, case: tuple[list[str], str]) -> None:
    patterns, text = case
    assert sorted(build_matcher(patterns, backend).find_all(text)) == naive(patterns, text)


def test_empty_pattern_list(backend: str) -> None:
    matcher = build_matcher([], backend)
    assert matcher.find_all("anything at all") == []
    assert matcher.find_all("") == []


def test_empty_text(backend: str) -> None:
    assert build_matcher(["a"], backend).find_all("") == []


def test_overlapping_and_nested(backend: str) -> None:
    patterns = ["开发", "代开", "代开发票", "发票", "票"]
    found = sorted(build_matcher(patterns, backend).find_all("代开发票代开"))
    assert found == [(0, 1, 3), (1, 0, 2), (1, 4, 6), (2, 0, 4), (3, 2, 4), (4, 3, 4)]


def test_repeated_overlaps(backend: str) -> None:
    assert sorted(build_matcher(["aa"], backend).find_all("aaaa")) == [(0, 0, 2), (0, 1, 3), (0, 2, 4)]


def test_non_bmp_characters_count_as_one(backend: str) -> None:
    patterns = ["😀", "😀😀", "𝐀x", "𠀀字"]
    text = "x😀😀𝐀x𠀀字😀"
    found = sorted(build_matcher(patterns, backend).find_all(text))
    assert found == naive(patterns, text)
    assert (3, 5, 7) in found
    for _, start, end in found:
        assert text[start:end] in patterns


def test_backends_agree_on_a_cjk_lexicon() -> None:
    patterns = ["赌场", "百家乐", "代开发票", "发票", "微信", "加微信", "信用卡", "用卡"]
    text = "加微信代开发票，百家乐赌场，信用卡套现" * 3
    results = {name: sorted(build_matcher(patterns, name).find_all(text)) for name in MATCHERS}
    expected = naive(patterns, text)
    assert all(r == expected for r in results.values()), results
