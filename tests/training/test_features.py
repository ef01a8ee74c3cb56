"""prepare(): the one text preparation shared by training and serving."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from smsguard.engine._features import (
    BOS,
    EOS,
    FEATURES_VERSION,
    NUM_LONG,
    NUM_SHORT,
    PROBES,
    SYM,
    URL,
    fingerprint,
    prepare,
)
from smsguard.training.data import fbs_text


def tokens(text: str) -> list[str]:
    return prepare(text).split(" ")


def test_masked_and_real_digits_give_the_same_tokens() -> None:
    # the corpora mask digits as x one for one (separators kept): the model must not tell them apart
    assert prepare("详询13812345678") == prepare("详询xxxxxxxxxxx")
    assert prepare("电话0527—84563555") == prepare("电话xxxx—xxxxxxxx")
    assert prepare("满300减50") == prepare("满xxx减xx")
    assert prepare("x.x折") == prepare("8.8折")


def test_digit_runs_are_shaped_by_length() -> None:
    assert tokens("验证码123456") == [BOS, "验", "证", "码", NUM_LONG, EOS]
    assert tokens("9点") == [BOS, NUM_SHORT, "点", EOS]
    assert NUM_LONG in tokens("加V一三八一二三四五六七八")  # spelled-out phone numbers are numbers too


def test_single_chinese_numerals_stay_words() -> None:
    assert tokens("一定") == [BOS, "一", "定", EOS]
    assert tokens("貳") == tokens("贰")


def test_x_in_latin_words_is_a_letter() -> None:
    assert tokens("taxi") == [BOS, "t", "a", "x", "i", EOS]
    assert NUM_SHORT not in tokens("xbox")


def test_urls_become_one_token() -> None:
    for text in (
        "点击 http://t.cn/R7YQqO0 领取",
        "访问ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ/abc领取",
        "官网 abc-88.top/x 领取",
    ):
        assert tokens(text).count(URL) == 1, text


def test_width_case_script_and_look_alikes_fold_away() -> None:
    assert prepare("ＶＩＰ会员") == prepare("vip会员")
    assert prepare("澳門新葡京") == prepare("澳门新葡京")


def test_punctuation_is_canonical_and_squeezed() -> None:
    assert prepare("好！！！") == prepare("好!")
    assert prepare("【银行】") == prepare("[银行]")
    assert tokens("★★★好😀") == [BOS, SYM, "好", SYM, EOS]


def test_the_onnx_pad_value_never_appears() -> None:
    # skl2onnx pads short rows with "#" tokens; a real "#" token would be counted in the padding
    assert "#" not in tokens("#话题# ##")


def test_empty_and_noise_only_texts_still_have_markers() -> None:
    assert prepare("") == f"{BOS} {EOS}"
    assert prepare(" \u200b ") == f"{BOS} {EOS}"


def test_long_texts_are_cut() -> None:
    assert prepare("好" * 5000) == prepare("好" * 500)


def test_fbs_placeholders_read_like_real_messages() -> None:
    # the FBS publisher replaced contacts and links by placeholders; they must look like the real thing
    assert prepare(fbs_text("详询 CELLPHONE 点击 URLdfge")) == prepare("详询13812345678点击http://t.cn/abc")
    assert "n a m e" not in prepare(fbs_text("NAME 经理"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_output_splits_the_same_way_everywhere(text: str) -> None:
    out = prepare(text)
    # the ONNX tokenizer splits on \S+ (re2, ASCII whitespace); sklearn on \S+ (Unicode): they must agree
    assert out == out.strip()
    assert all(out.split(" ")), "no empty tokens"
    assert not any(ch.isspace() for ch in out if ch != " ")
    assert re.findall(r"\S+", out) == out.split(" ")
    assert out.startswith(BOS) and out.endswith(EOS)
    assert prepare(text) == out  # deterministic


def test_fingerprint_covers_the_probes() -> None:
    assert len(PROBES) >= 8
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint())
    assert FEATURES_VERSION
