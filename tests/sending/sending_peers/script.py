"""How a simulator misbehaves on purpose: the failures users report on real carrier gateways.

``--script`` takes a comma-separated list of these (``name`` or ``name=value``):

* ``reorder=N``: SUBMIT responses are held back and sent in reverse order, N at a time;
* ``receipt_first``: the status report is sent BEFORE the submit response;
* ``partial_receipts``: only the first part of a long message gets a status report;
* ``zero_msg_id``: submit responses carry an all-zero message id;
* ``throttle_for=S``: from the first submit to a number ending 8001, every submit to such numbers is
  answered "flow control / throttled" for S seconds (the simulator counts how many it refused);
* ``throttle_part=N``: the second part of every long message is answered "throttled" its first N times;
* ``duplicate_mo_part``: a long MO reply sends its first part twice;
* ``spread_mo``: the parts of a long MO reply go over different connections of the account
  (round robin), and in reverse order.
"""

from __future__ import annotations

import dataclasses

from smsguard.sending._long_sms import encode_text, split_content


@dataclasses.dataclass(frozen=True, slots=True)
class Script:
    reorder: int = 0
    receipt_first: bool = False
    partial_receipts: bool = False
    zero_msg_id: bool = False
    throttle_for: float = 0.0
    throttle_part: int = 0
    duplicate_mo_part: bool = False
    spread_mo: bool = False

    @classmethod
    def parse(cls, text: str) -> Script:
        values: dict[str, object] = {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for item in filter(None, (t.strip() for t in text.split(","))):
            name, _, value = item.partition("=")
            if name not in fields:
                raise SystemExit(f"unknown script item {name!r}; known: {', '.join(fields)}")
            kind = type(getattr(cls(), name))
            values[name] = True if kind is bool else kind(value)
        return cls(**values)  # type: ignore[arg-type]

    def argv(self) -> list[str]:
        items = [
            f.name if isinstance(v, bool) else f"{f.name}={v}"
            for f in dataclasses.fields(self)
            if (v := getattr(self, f.name)) != f.default
        ]
        return ["--script", ",".join(items)] if items else []


# An MT text "MO:LONG" makes the handset answer with this, long enough to come in two UDH parts.
LONG_REPLY = "您好，我想咨询一下订单的发货时间，" * 6 + "谢谢"


def long_mo_parts(text: str, script: Script, ref: int = 0x5A) -> list[tuple[int, int, bytes]]:
    """[(tp_udhi, msg_fmt, content)] of an MO reply: one part, or UDH parts as the script wants them."""
    fmt, content = encode_text(LONG_REPLY if text == "LONG" else text)
    parts = [(udhi, fmt, chunk) for udhi, chunk in split_content(content, ref)]
    if len(parts) > 1 and script.spread_mo:
        parts.reverse()
    if len(parts) > 1 and script.duplicate_mo_part:
        parts.insert(1, parts[0])
    return parts
