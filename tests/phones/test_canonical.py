"""The one parser: E.164 out, Unicode decimal digits folded, everything else refused with code and where."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsguard.phones import BLOCKS, MAX_LENGTH, InvalidPhone, PhoneVault, decimal_digits, fold, parse_phone


@pytest.mark.parametrize(
    ("raw", "e164", "carrier", "virtual"),
    [
        ("13812345678", "+8613812345678", "mobile", False),
        ("+86 138-1234-5678", "+8613812345678", "mobile", False),
        ("0086 13012345678", "+8613012345678", "unicom", False),
        ("8618912345678", "+8618912345678", "telecom", False),
        ("19212345678", "+8619212345678", "broadnet", False),
        ("17001234567", "+8617001234567", "telecom", True),
        ("17041234567", "+8617041234567", "unicom", True),
        ("16512345678", "+8616512345678", "mobile", True),
        ("(+86) 138.1234.5678", "+8613812345678", "mobile", False),
        ("\u3000138 1234 5678\t", "+8613812345678", "mobile", False),
    ],
)
def test_parse(raw: str, e164: str, carrier: str, virtual: bool) -> None:
    p = parse_phone(raw)
    assert (p.e164, p.carrier, p.virtual) == (e164, carrier, virtual)
    assert p.price_key == ("virtual" if virtual else carrier)


def test_mixed_unicode_digits_are_the_same_number() -> None:
    """Issue 15 failure 3: ``1380013８000`` (a full-width 8) became ``+861380013８000``, another number that
    bypassed opt-outs, de-duplication and caps, and a non-ASCII number went to the gateway."""
    ascii_form = parse_phone("13800138000")
    for spelling in (
        "1380013８000",  # one full-width digit
        "１３８００１３８０００",  # all full-width
        "١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic
        "۱۳۸۰۰۱۳۸۰۰۰",  # Extended Arabic-Indic (Persian)
        "१३८००१३८०००",  # Devanagari
        "138٠٠13８000",  # mixed scripts
        "＋８６ １３８－００１３－８０００",  # full-width plus, digits and hyphens
        "𝟏𝟑𝟖𝟎𝟎𝟏𝟑𝟖𝟎𝟎𝟎",  # mathematical bold digits (Nd)
    ):
        p = parse_phone(spelling)
        assert p == ascii_form, spelling
        assert p.e164.isascii() and p.e164 == "+8613800138000"


@pytest.mark.parametrize(
    ("raw", "code", "message_part"),
    [
        ("", "phone.empty", "empty"),
        ("  - ", "phone.empty", "empty"),
        ("12345", "phone.length", "11 digits"),
        ("14012345678", "phone.unknown_prefix", "prefix"),
        ("02161234567", "phone.not_mobile", "mobile"),
        ("+14155552671", "phone.foreign", "mainland"),
        ("hello", "phone.invalid", "'h'"),
        ("138八0013800", "phone.invalid", "U+516B"),  # a CJK numeral is not a decimal digit
        ("¹38001380000", "phone.invalid", "U+00B9"),  # superscript one
        ("①3800138000", "phone.invalid", "U+2460"),  # circled digit
        ("138\u200b00138000", "phone.invalid", "U+200B"),  # zero-width space
        ("138/0013/8000", "phone.invalid", "'/'"),
        ("138+00138000", "phone.invalid", "'+'"),
        ("++8613800138000", "phone.invalid", "'+'"),
        ("1" * (MAX_LENGTH + 1), "phone.too_long", "too long"),
    ],
)
def test_refused(raw: str, code: str, message_part: str) -> None:
    with pytest.raises(InvalidPhone) as e:
        parse_phone(raw, where="$.phone")
    assert e.value.code == code
    assert message_part in e.value.message
    assert e.value.to_dict() == {"code": code, "message": e.value.message, "where": "$.phone"}


def test_refusal_names_the_position() -> None:
    with pytest.raises(InvalidPhone) as e:
        parse_phone("1380013x000", where="line 7")
    assert e.value.message == "character 8: 'x' (U+0078) is not a digit" and e.value.where == "line 7"


def test_fold_covers_every_decimal_digit() -> None:
    """Every Unicode Nd character folds to its ASCII digit; no other character passes ``fold``."""
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if ch.isdecimal():
            assert fold(ch) == str(unicodedata.decimal(ch)), hex(cp)


# -- property: every spelling of a number has one identity ------------------------------------------------

_DIGIT_FORMS = {d: sorted(c for c, v in decimal_digits().items() if v == d) for d in range(10)}
_SEPARATORS = [" ", "-", ".", "(", ")", "\t", "\u3000", "－", "．", "（", "）"]
_VAULT = PhoneVault(b"k" * 32, b"hash key")


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """A valid national number: one of our blocks, padded to 11 digits."""
    block = draw(st.sampled_from(sorted(BLOCKS)))
    rest = draw(st.text(alphabet="0123456789", min_size=11 - len(block), max_size=11 - len(block)))
    return block + rest


@st.composite
def spellings(draw: st.DrawFn, national: str) -> str:
    out = [draw(st.sampled_from(["", "+86", "0086", "86", "+86 ", "＋８６", "(+86)", "+٨٦"]))]
    for ch in national:
        out.append(draw(st.sampled_from(_DIGIT_FORMS[int(ch)])))
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(_SEPARATORS)))
    pad = draw(st.sampled_from(["", " ", "\u3000", "\t", " \n"]))
    return pad + "".join(out) + pad


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_two_spellings_one_identity(data: st.DataObject) -> None:
    national = data.draw(numbers())
    a, b = data.draw(spellings(national)), data.draw(spellings(national))
    pa, pb = parse_phone(a), parse_phone(b)
    assert pa == pb and pa.e164 == "+86" + national
    assert _VAULT.hash(pa.e164) == _VAULT.hash(pb.e164)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_only_invalid_phone_escapes(raw: str) -> None:
    """Any text: a Phone with an ASCII E.164, or InvalidPhone; never another exception."""
    try:
        p = parse_phone(raw)
    except InvalidPhone as e:
        assert e.code.startswith("phone.") and e.message
    else:
        assert p.e164.isascii() and p.e164[1:].isdigit() and p.e164.startswith("+861")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789０１２３４５６７８９٠١٢+＋ -()x八¹\u200b"), max_size=20))
def test_fuzz_digit_heavy(raw: str) -> None:
    try:
        p = parse_phone(raw)
    except InvalidPhone:
        return
    assert p.e164.isascii()
