"""The batch rule triggers (Rules.flags_many) never miss a text a rule would act on, and the columns the engine
reads (LexiconStage.scan_columns) hold exactly scan_many's hits (issue 22)."""

from __future__ import annotations

import re

import pytest
import verdict_reference as ref  # tests/engine is on sys.path (rootdir-relative test modules)

from smsguard.engine import Engine, default_config
from smsguard.engine import _rules as rules_module
from smsguard.engine._rules import F_CUE, F_DIGITS, F_LINK, F_MARKETING, F_MOBILE, F_OPTOUT, F_VERIFICATION

# Texts that put triggers at a text's edges and next to the batch separator, plus the golden sets.
EDGES = [
    "验证码123456",
    "限时优惠",
    "回T退订",
    "加微信abc12345",
    "13800138000",
    "138 0013 8000",
    "访问 example。com",
    "www.example.com",
    "Reply STOP to opt out",
    "ｅｘａｍｐｌｅ．ｃｏｍ",
    "a dot com",
    "【示例】您好",
    "。。。",
    "\u200b",
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(default_config())


def _texts() -> list[str]:
    return EDGES + [m.text for m in ref.golden_messages()]


def test_every_trigger_a_text_holds_sets_its_bit(engine: Engine) -> None:
    rules = engine._state.rules
    norm = engine._norm
    texts = _texts()
    folded = norm.fold_many(texts)
    for size in (1, 7, 512):  # triggers at every position of a batch
        for at in range(0, len(texts), size):
            batch, fbatch = texts[at : at + size], folded[at : at + size]
            for text, f, flags in zip(batch, fbatch, rules.flags_many(batch, fbatch), strict=True):
                light = norm.light(text)
                expected = {
                    F_VERIFICATION: rules._verification_cue.search(f) is not None,
                    F_MARKETING: rules._marketing_cue.search(f) is not None,
                    F_OPTOUT: rules._has_optout(f),
                    F_CUE: rules._cue_trigger.search(f) is not None,
                    F_DIGITS: rules_module._TEN_DIGITS.search(f) is not None,
                    F_MOBILE: rules_module._MOBILE_START.search(light) is not None,
                    F_LINK: "." in light or " dot " in light or rules_module._DISGUISE_START.search(light) is not None,
                }
                missed = [bit for bit, holds in expected.items() if holds and not flags & bit]
                assert not missed, f"{text!r}: bits {missed} not set ({flags:b})"
                # the exact bits are exact: a set bit means the trigger is there
                for bit in (F_VERIFICATION, F_MARKETING, F_CUE):
                    assert bool(flags & bit) == expected[bit], (text, bit)


@pytest.mark.parametrize(
    ("pattern", "first"),
    [
        ("回[复覆]?(?:t|td|n|r)退", {"回"}),
        ("(?:reply|txt)stop", {"r", "t"}),
        ("a?b", {"a", "b"}),
        ("(?<![0-9])1[3-9]", {"1"}),
        ("a*", None),  # can match the empty string
        (".x", None),
        (r"\dx", None),
        ("(?i)t退", None),  # a literal stands for its other cases too
    ],
)
def test_first_characters_of_a_pattern(pattern: str, first: set[str] | None) -> None:
    assert rules_module._first_chars(pattern) == first
    if first is not None:  # and every match does start with one of them
        assert all(m.group(0)[0] in first for m in re.finditer(pattern, "回t退 replystop txtstop b ab 138"))


def test_scan_columns_hold_scan_many_hits(engine: Engine) -> None:
    stage = engine.lexicon
    texts = [*_texts(), "ﬁ代开发票", "代\u200b开发票 赌场", "𝐚代开发票"]  # expanding and astral characters
    columns = stage.scan_columns(texts)
    many = stage.scan_many(texts)
    assert columns.bounds[-1] == len(columns.term_ids) == sum(map(len, many))
    for j, hits in enumerate(many):
        rows = range(columns.bounds[j], columns.bounds[j + 1])
        got = [(stage.terms[columns.term_ids[r]], int(columns.starts[r]), int(columns.ends[r])) for r in rows]
        assert got == [(h.term, h.start, h.end) for h in hits], texts[j]
    assert any(many), "the golden spam set hits the project lexicons"
