"""Amounts: integer micro-units of the policy's currency in SQL, decimal strings with four places outside."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from smsguard.core import InputError

MAX_AMOUNT = Decimal(10) ** 12
"""The largest amount one entry may carry: micros are SQL BIGINT (at most ~9.2e18)."""


def to_micros(amount: float | int | str | Decimal, *, where: str = "$.amount", signed: bool = False) -> int:
    """``12.5`` → 12_500_000, exactly (through Decimal, never binary float arithmetic)."""
    try:
        d = Decimal(str(amount))
    except InvalidOperation:
        raise InputError(f"not an amount: {amount!r}", where=where, code="billing.amount") from None
    if not d.is_finite() or abs(d) > MAX_AMOUNT or (d < 0 and not signed):
        raise InputError(f"amount must be {'-1e12' if signed else '0'} to 1e12, got {amount}", where=where,
                         code="billing.amount")
    return int((d * 1_000_000).to_integral_value())


def money(m: int) -> str:
    """Micros as a decimal string with four places (``12500000`` → ``12.5000``), exact for any size."""
    return f"{Decimal(m) / 1_000_000:.4f}"
