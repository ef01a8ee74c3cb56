"""Fixed-width octet strings, the way CMPP, SGIP and SMGP carry every text field: ASCII, NUL-padded on
the right to the field's size (longer values are cut), read back up to the first NUL."""

from __future__ import annotations


def pad(value: str, size: int) -> bytes:
    return value.encode("ascii", "replace")[:size].ljust(size, b"\0")


def unpad(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")
