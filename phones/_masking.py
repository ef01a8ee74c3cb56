"""The one masking function: what people see of a number (UI, reports, exports, review samples, audit).

``mask`` keeps the first three and last four national digits, ``138****1234``, when there are at least
eight (the carrier block and a tail are what reviewers and customers need to spot patterns); shorter or
invalid input shows no digit at all, only its shape (``12a45`` → ``**a**``), at most 32 characters.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

_SHOWN = 32
_MASKED = re.compile(r"[0-9]{3}\*{4}[0-9]{4}")


@functools.cache
def decimal_digits() -> dict[str, int]:
    """Every Unicode decimal digit (category Nd) → its value: 660 characters in 66 scripts."""
    return {c: unicodedata.decimal(c) for c in map(chr, range(sys.maxunicode + 1)) if c.isdecimal()}


@functools.cache
def phone_pattern() -> re.Pattern[str]:
    """A mainland mobile number inside free text, written in any decimal digits (a full-width number must
    not slip through ``mask_phones_in``), with an optional +86 / 0086 / 86 and - or space separators."""
    forms = {d: "".join(c for c, v in decimal_digits().items() if v == d) for d in range(10)}
    one, eight, six, zero = (f"[{forms[d]}]" for d in (1, 8, 6, 0))
    second = "[" + "".join(forms[d] for d in range(3, 10)) + "]"
    country = rf"(?:[+＋]?{eight}{six}[- ]?|{zero}{zero}{eight}{six}[- ]?)?"
    return re.compile(rf"(?<!\d){country}({one}{second}\d)[- ]?(\d{{4}})[- ]?(\d{{4}})(?!\d)")


def _ascii_digits(value: str) -> str:
    return "".join(str(int(c)) for c in value if c.isdecimal())


def mask(value: str) -> str:
    """``138****1234`` for a number (any spelling: ``+86 138-1234-1234`` too); for anything with fewer than
    eight digits, the input with every digit replaced by ``*``.

    >>> mask("+8613812341234"), mask("13812341234"), mask("12a45")
    ('138****1234', '138****1234', '**a**')
    """
    if _MASKED.fullmatch(value):  # already masked (review samples come from phone_masked): unchanged
        return value
    digits = _ascii_digits(value)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    if len(digits) >= 8:
        return f"{digits[:3]}****{digits[-4:]}"
    return "".join("*" if c.isdecimal() else c for c in value.strip()[:_SHOWN])


def mask_phones_in(text: str) -> str:
    """Every mainland mobile number inside ``text`` masked (defence in depth for exports)."""
    return phone_pattern().sub(lambda m: mask(m[0]), text)
