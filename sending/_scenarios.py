"""How the local peers (CMPP simulator, HTTP provider simulator, SMPP peer in tests/sending/smpp_peer)
behave, chosen by the destination number, so one contract test suite can drive all of them.

The SMPP peer (JavaScript) implements the same table in its ``scenario()``.
"""

from __future__ import annotations

from typing import Literal

Scenario = Literal["throttle", "reject", "undeliv", "expired", "ok"]

THROTTLE_TIMES = 2  # a "throttle" number is refused this many times per text, then accepted


def scenario(phone: str) -> Scenario:
    if phone.endswith("9001"):
        return "throttle"
    if phone.endswith("9002"):
        return "reject"
    if phone.endswith("9003"):
        return "undeliv"
    if phone.endswith("9004"):
        return "expired"
    return "ok"


MO_PREFIX = "MO:"  # a text starting with this makes the simulated handset reply with the rest
