"""Long messages shared by CMPP, SGIP and SMGP: text coding, splitting with a UDH, and reassembling MO parts.

All three Chinese protocols carry GSM 03.38 data coding values (0 ASCII, 8 UCS-2, 15 GBK) and, for a
message over 140 octets, a 6-octet User Data Header (3GPP TS 23.040 §9.2.3.24.1, IEI 0x00: 8-bit
reference, total, sequence) at the start of each part with TP_udhi = 1. A handset's long reply (MO)
arrives the same way, part by part, possibly out of order, on different connections, or with one part
twice; :class:`Reassembler` joins them.
"""

from __future__ import annotations

import dataclasses
import time

from smsguard.sending._gateway import PermanentGatewayError

FMT_ASCII = 0
FMT_UCS2 = 8
FMT_GBK = 15

SINGLE_BYTES = 140  # one message: 140 octets of content (70 UCS-2 characters)
PART_BYTES = 134  # one part of a long message: 140 minus the 6-octet UDH (67 UCS-2 characters)
MAX_PARTS = 255


class LongMessageError(PermanentGatewayError):
    """A text cannot be split into at most 255 parts: refused for good, never retried."""

    code = "gateway.message_too_long"


def encode_text(text: str) -> tuple[int, bytes]:
    """ASCII when it fits, else UCS-2 (big-endian), the format every Chinese gateway accepts."""
    if text.isascii():
        return FMT_ASCII, text.encode("ascii")
    return FMT_UCS2, text.encode("utf-16-be")


def decode_text(fmt: int, content: bytes) -> str:
    if fmt == FMT_UCS2:
        return content.decode("utf-16-be", "replace")
    if fmt == FMT_GBK:
        return content.decode("gbk", "replace")
    return content.decode("latin-1")


def split_content(content: bytes, ref: int) -> list[tuple[int, bytes]]:
    """[(tp_udhi, content)] for each part: one part without UDH when it fits, else 6-octet UDH parts."""
    if len(content) <= SINGLE_BYTES:
        return [(0, content)]
    chunks = [content[i : i + PART_BYTES] for i in range(0, len(content), PART_BYTES)]
    if len(chunks) > MAX_PARTS:
        raise LongMessageError(f"message needs {len(chunks)} parts, at most {MAX_PARTS} are possible")
    total = len(chunks)
    return [(1, bytes([5, 0, 3, ref & 0xFF, total, n]) + chunk) for n, chunk in enumerate(chunks, start=1)]


def strip_udh(udhi: int, content: bytes) -> tuple[bytes, tuple[int, int, int] | None]:
    """(text bytes, (ref, total, seq) or None) of a part; understands 8-bit (IEI 0) and 16-bit (IEI 8) refs."""
    if not udhi or not content:
        return content, None
    header_len = content[0] + 1
    part = None
    header = content[1:header_len]
    i = 0
    while i + 1 < len(header):
        iei, size = header[i], header[i + 1]
        if iei == 0 and size == 3 and i + 5 <= len(header):
            part = (header[i + 2], header[i + 3], header[i + 4])
        elif iei == 8 and size == 4 and i + 6 <= len(header):
            part = ((header[i + 2] << 8) | header[i + 3], header[i + 4], header[i + 5])
        i += 2 + size
    return content[header_len:], part


@dataclasses.dataclass(slots=True)
class _Pending:
    fmt: int
    parts: dict[int, bytes]
    first_seen: float


class Reassembler:
    """Joins the parts of long MO messages, keyed by (sender, receiver, reference, total).

    One instance per gateway, shared by all its connections, so parts that arrive on different
    connections still meet. A part seen twice keeps the first copy. Parts whose siblings never come
    are given up after ``timeout`` seconds and returned by :meth:`expired` (joined as far as they go,
    so an opt-out keyword in the first part is not lost).
    """

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._pending: dict[tuple[str, str, int, int], _Pending] = {}
        self.duplicates = 0

    def add(self, sender: str, receiver: str, fmt: int, udhi: int, content: bytes) -> str | None:
        """The whole text once every part is in (or at once for a single message), else None."""
        raw, part = strip_udh(udhi, content)
        if part is None or part[1] <= 1:
            return decode_text(fmt, raw)
        ref, total, seq = part
        key = (sender, receiver, ref, total)
        pending = self._pending.setdefault(key, _Pending(fmt, {}, time.monotonic()))
        if seq in pending.parts:
            self.duplicates += 1
            return None
        pending.parts[seq] = raw
        if len(pending.parts) < total:
            return None
        del self._pending[key]
        return decode_text(pending.fmt, b"".join(pending.parts[n] for n in sorted(pending.parts)))

    def expired(self) -> list[tuple[str, str, str]]:
        """[(sender, receiver, partial text)] of messages whose missing parts did not come in time."""
        now = time.monotonic()
        out = []
        for key, pending in list(self._pending.items()):
            if now - pending.first_seen >= self.timeout:
                del self._pending[key]
                text = decode_text(pending.fmt, b"".join(pending.parts[n] for n in sorted(pending.parts)))
                out.append((key[0], key[1], text))
        return out
