"""The one parser of phone numbers: what a user typed → a canonical ``Phone`` (E.164), or ``InvalidPhone``.

Accepted, and nothing else:

* ASCII digits, and every other Unicode *decimal* digit (category Nd: full-width ``８``, Arabic-Indic ``٨``,
  Devanagari ``८``, …) folded to its ASCII digit (``unicodedata.decimal``). Superscripts, circled digits,
  CJK numerals (``八``) and the like are not decimal digits and are refused: no one types them meaning a
  number, and folding them would let look-alikes through.
* The separators people write inside numbers: space, tab, U+3000 (ideographic space), ``-``, ``.``, ``(``,
  ``)`` and their full-width forms ``－ ． （ ）``; whitespace around the number is ignored.
* One ``+`` (or ``＋``) at the start, for the country code.

Anything else (letters, ``/``, zero-width or control characters, a ``+`` in the middle) is a rejection that
names the character and its position. The result is mainland China mobiles only (``+861…``): landlines and
foreign numbers are refused with their own codes. Two spellings of one number give the same ``Phone``, so
its keyed hash (opt-outs, caps, de-duplication) and the number handed to the gateway are ASCII and one.

Speed: mainland mobiles, nearly all input, are one ``str.translate`` plus phonenumbers' CN mobile pattern
compiled once; anything else goes through ``phonenumbers.parse`` (≈15 µs).
"""

from __future__ import annotations

import dataclasses
import functools
import re

from smsguard.core import SmsguardError

from ._masking import decimal_digits, mask
from ._prefixes import block_of

MAX_LENGTH = 64
"""Longer input is not a phone number (and is not handed to phonenumbers)."""

_SEPARATORS = " \t\u3000-.()－．（）"
_FAST = re.compile(r"(?:\+?86|0086)?(1[0-9]{10})", re.ASCII)
_SHAPE = re.compile(r"\+?[0-9]*", re.ASCII)


class InvalidPhone(SmsguardError):
    code = "phone.invalid"


@dataclasses.dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    """``+8613812345678``: ASCII, always."""
    carrier: str
    """Host network: mobile / unicom / telecom / broadnet / other."""
    virtual: bool
    """A virtual operator's number (170/171/162/165/167)."""
    ported: bool = False
    """The carrier comes from the portability table (携号转网), not from the number's block."""

    @property
    def national(self) -> str:
        return self.e164[3:] if self.e164.startswith("+86") else self.e164.lstrip("+")

    @property
    def price_key(self) -> str:
        """The ``prices`` key in policy.yaml: ``virtual`` for MVNO numbers, else the carrier."""
        return "virtual" if self.virtual else self.carrier

    @property
    def masked(self) -> str:
        return mask(self.e164)


@functools.cache
def _fold_table() -> dict[int, int | None]:
    """str.translate table: every non-ASCII decimal digit → its ASCII digit, separators → removed."""
    table: dict[int, int | None] = {ord(c): ord("0") + v for c, v in decimal_digits().items() if not c.isascii()}
    table.update({ord(c): None for c in _SEPARATORS})
    table[ord("＋")] = ord("+")
    return table


def fold(raw: str) -> str:
    """The digits (ASCII) of ``raw`` with an optional leading ``+``; ``InvalidPhone`` names the first
    character that is neither a decimal digit nor a separator.

    >>> fold("+86 138-0013-８000")
    '+8613800138000'
    """
    s = raw.strip()
    if len(s) > MAX_LENGTH:
        raise InvalidPhone(f"too long for a phone number ({len(s)} characters)", code="phone.too_long")
    folded = s if s.isascii() and s.isdigit() else s.translate(_fold_table())
    if _SHAPE.fullmatch(folded):
        return folded
    for i, ch in enumerate(s):  # name the culprit (rare path)
        if ch.isdecimal() or ch in _SEPARATORS or (ch in "+＋" and not s[:i].strip(_SEPARATORS)):
            continue
        what = "'+' only at the start" if ch in "+＋" else f"{ch!r} (U+{ord(ch):04X}) is not a digit"
        raise InvalidPhone(f"character {i + 1}: {what}")
    raise InvalidPhone("'+' only at the start")  # pragma: no cover - loop finds it


@functools.cache
def _mobile_pattern() -> re.Pattern[str]:
    from phonenumbers import PhoneMetadata

    md = PhoneMetadata.metadata_for_region("CN")
    return re.compile(md.mobile.national_number_pattern, re.ASCII)


def _phone(national: str) -> Phone:
    block = block_of(national)
    if block is None:
        return Phone("+86" + national, "other", False)
    return Phone("+86" + national, block.carrier, block.virtual)


def parse_phone(raw: str, *, where: str | None = None) -> Phone:
    """Validate and canonicalize one number (mainland China mobiles only); ``InvalidPhone`` says why not,
    ``where`` (a JSON path, ``line 7``, …) is put on it."""
    try:
        s = fold(raw)
        m = _FAST.fullmatch(s)
        if m and _mobile_pattern().fullmatch(m.group(1)):
            return _phone(m.group(1))
        return _phone(_national_slow(s))
    except InvalidPhone as e:
        if where is not None and e.where is None:
            e.where = where
        raise


_PARSE_ERRORS = {
    0: ("unknown country code after '+'", "phone.country"),  # INVALID_COUNTRY_CODE
    1: ("not a phone number: too few digits", "phone.not_a_number"),  # NOT_A_NUMBER
    2: ("too short after the international prefix", "phone.too_short"),  # TOO_SHORT_AFTER_IDD
    3: ("too short for a phone number", "phone.too_short"),  # TOO_SHORT_NSN
    4: ("too long for a phone number", "phone.too_long"),  # TOO_LONG
}
"""phonenumbers' ``NumberParseException.error_type`` → (message, code)."""


def _national_slow(s: str) -> str:
    import phonenumbers

    if not s.lstrip("+"):
        raise InvalidPhone("empty phone number", code="phone.empty")
    try:
        num = phonenumbers.parse(s, "CN")
    except phonenumbers.NumberParseException as e:
        # our own words and code: the library's English message is not for customers
        message, code = _PARSE_ERRORS.get(e.error_type, ("not a phone number", "phone.not_a_number"))
        raise InvalidPhone(message, code=code) from None
    if not phonenumbers.is_valid_number(num):
        if num.country_code == 86 and len(str(num.national_number)) != 11:
            raise InvalidPhone(f"a mainland mobile number has 11 digits, this one {len(str(num.national_number))}",
                               code="phone.length")
        raise InvalidPhone("no such number: its prefix belongs to no network", code="phone.unknown_prefix")
    if num.country_code != 86:
        raise InvalidPhone("not a mainland China number (international SMS is not supported)", code="phone.foreign")
    if phonenumbers.number_type(num) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidPhone("not a mobile number (landlines cannot receive SMS)", code="phone.not_mobile")
    national = str(num.national_number)
    if not _mobile_pattern().fullmatch(national):  # FIXED_LINE_OR_MOBILE: keep only real mobiles
        raise InvalidPhone("not a mobile number (landlines cannot receive SMS)", code="phone.not_mobile")
    return national
