"""policy.yaml ``prices``: the price per segment by carrier, the fallback below the SQL price lists."""

from __future__ import annotations

from smsguard.core import PolicyFile, PolicySection

from ._prices import CARRIERS


class Prices(PolicySection):
    """Price of one segment per carrier, in ``currency`` (the cost estimate is segments × price)."""

    currency: str = "CNY"
    mobile: float = 0.045
    unicom: float = 0.045
    telecom: float = 0.045
    broadnet: float = 0.045
    virtual: float = 0.05
    other: float = 0.05

    def for_carrier(self, carrier: str) -> float:
        return getattr(self, carrier) if carrier in CARRIERS else self.other


def prices_policy(file: PolicyFile) -> Prices:
    """``prices`` of ``file``, validated (errors name the key path); other keys are not read."""
    prices = file.section(Prices, at="prices")
    for key in CARRIERS:
        if getattr(prices, key) < 0:
            file.fail(f"prices.{key}", "must not be negative")
    return prices
