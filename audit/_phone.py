"""Phone numbers in the audit log: masked for people, keyed-hashed for lookups, never stored raw.

The keyed hash (HMAC-SHA256) keeps a stolen database from revealing numbers by brute force over the
~10^10 mobile numbers: without the key the hashes are useless. The key comes from
``SMSGUARD_PHONE_HASH_KEY`` (hex) or the file ``<data dir>/phone-hash.key`` (created 0600 on first use);
every process of one deployment must share it, or trails by number miss events.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from engine import SmsguardError

_NON_DIGIT = re.compile(r"\D")
# A mainland mobile number, optionally with +86 / 0086 / 86, not inside a longer digit run.
PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?|0086[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")


def normalize_phone(number: str) -> str:
    """Digits only, without the +86/0086/86 country prefix of an 11-digit mainland number."""
    digits = _NON_DIGIT.sub("", number)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix) :]
    if not digits:
        raise SmsguardError(f"not a phone number: {number!r}", where="phone", code="audit.phone")
    return digits


def mask_phone(number: str) -> str:
    """Keep the first 3 and last 4 digits: ``13812341234`` → ``138****1234`` (short numbers keep the last 4)."""
    d = normalize_phone(number)
    if len(d) >= 8:
        return d[:3] + "*" * (len(d) - 7) + d[-4:]
    return "*" * max(0, len(d) - 4) + d[-4:]


def mask_phones_in(text: str) -> str:
    """Every mainland mobile number in ``text`` masked (defence in depth for exports)."""
    return PHONE_RE.sub(lambda m: f"{m[1]}****{m[3]}", text)


def load_phone_key(data_dir: Path) -> bytes:
    """The deployment's phone-hash key: ``SMSGUARD_PHONE_HASH_KEY`` (hex) or ``<data_dir>/phone-hash.key``."""
    raw = os.environ.get("SMSGUARD_PHONE_HASH_KEY")
    if raw:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            raise SmsguardError("must be hex", where="SMSGUARD_PHONE_HASH_KEY", code="settings.invalid") from None
    path = Path(data_dir) / "phone-hash.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two processes starting at once must not write two different keys
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def phone_hash(number: str, key: bytes) -> str:
    """The keyed hash that names a number in subjects (``phone:<hash>``) and payloads (``phone_hash``)."""
    return hmac.new(key, normalize_phone(number).encode(), hashlib.sha256).hexdigest()


def phone_subject(number: str, key: bytes) -> str:
    return "phone:" + phone_hash(number, key)
