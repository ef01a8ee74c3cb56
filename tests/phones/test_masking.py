"""One masking function: numbers of any spelling show ``138****1234``; short or invalid input shows no digit."""

from __future__ import annotations

import pytest

from smsguard.phones import mask, mask_phones_in


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("+8613812341234", "138****1234"),
        ("13812341234", "138****1234"),
        ("+86 138-1234-1234", "138****1234"),
        ("008613812341234", "138****1234"),
        ("１３８１２３４１２３４", "138****1234"),  # full-width: shown in ASCII
        ("02161234567", "021****4567"),
        ("12345678", "123****5678"),  # eight digits: the shortest shown as head + tail
        ("1234567", "*******"),  # shorter: no digit at all (the four old versions disagreed here)
        ("123", "***"),
        ("12a45", "**a**"),
        ("", ""),
        ("abc", "abc"),
        ("x" * 40 + "1", "x" * 32),  # at most 32 characters of an invalid value
    ],
)
def test_mask(value: str, shown: str) -> None:
    assert mask(value) == shown
    assert mask(shown) == shown  # idempotent: a masked value stays as it is


def test_mask_phones_in_text() -> None:
    assert mask_phones_in("call 13812341234 or +86 139-0000-1111 today") == "call 138****1234 or 139****1111 today"
    assert mask_phones_in("１３８１２３４１２３４") == "138****1234"  # full-width numbers in free text too
    assert mask_phones_in("order 2024123112345678") == "order 2024123112345678"  # inside a longer digit run


def test_every_caller_masks_alike() -> None:
    """audit, batches and review use the same function (they had four versions that disagreed)."""
    from smsguard import audit, batches

    for value in ("13812341234", "1234567", "+86 138 1234 1234", "12a45"):
        assert audit.mask_phone(value) == batches.mask(value) == mask(value)
        assert batches.parse_phone("13812341234").masked == mask("13812341234")
