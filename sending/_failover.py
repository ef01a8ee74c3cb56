"""Route a recipient to channels by carrier (China Mobile / Unicom / Telecom number ranges), primary
first, backups after; channels whose circuit is open are skipped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from smsguard.sending._gateway import GatewayConfigError

# Mobile number prefixes (first three digits) by carrier; 4-digit prefixes for the split 17x/14x ranges.
_PREFIXES: dict[str, tuple[str, ...]] = {
    "mobile": ("134", "135", "136", "137", "138", "139", "147", "148", "150", "151", "152", "157", "158", "159",
               "172", "178", "182", "183", "184", "187", "188", "195", "197", "198", "1703", "1705", "1706", "1440"),
    "unicom": ("130", "131", "132", "145", "146", "155", "156", "166", "167", "171", "175", "176", "185", "186",
               "196", "1704", "1707", "1708", "1709"),
    "telecom": ("133", "149", "153", "162", "173", "174", "177", "180", "181", "189", "190", "191", "193", "199",
                "1700", "1701", "1702", "1410"),
}
_BY_PREFIX = {p: c for c, ps in _PREFIXES.items() for p in ps}


def carrier_of(phone: str) -> str:
    """``mobile`` / ``unicom`` / ``telecom`` for a mainland mobile number (+86 / 86 allowed), else ``other``."""
    digits = phone.lstrip("+")
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) != 11 or not digits.isdigit():
        return "other"
    return _BY_PREFIX.get(digits[:4]) or _BY_PREFIX.get(digits[:3]) or "other"  # the 4-digit ranges first


class Router:
    """``routes`` maps a carrier (or ``default``) to channel names in order of preference."""

    def __init__(self, routes: Mapping[str, Iterable[str]]) -> None:
        self.routes = {carrier: tuple(names) for carrier, names in routes.items()}
        if "default" not in self.routes:
            raise GatewayConfigError("a route for 'default' is required", where="routes.default")

    def candidates(self, phone: str) -> tuple[str, ...]:
        return self.routes.get(carrier_of(phone)) or self.routes["default"]
