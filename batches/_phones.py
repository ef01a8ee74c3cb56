"""Phone numbers: validation and E.164 normalization (``phonenumbers``), mainland carrier by prefix,
masking (``138****1234``), AES-GCM encryption at rest and a keyed hash (HMAC-SHA256) for lookups.

A raw number never leaves this module except to the gateway: SQL holds ``phone_enc`` (nonce + AES-GCM
ciphertext), ``phone_hash`` (HMAC, for opt-out / cap / dedupe lookups) and ``phone_masked`` (for display).

The AES-256-GCM key is ``<SMSGUARD_DATA_DIR>/phone.key`` (32 random bytes, created 0600 on first use) or
``SMSGUARD_PHONE_KEY`` (base64); the keyed hash is the audit log's (``audit.phone_hash``, its own key), so a
``phone_hash`` here is the same string as in audit subjects ``phone:<hash>`` and trails find both. Every
process of a deployment must share both keys.

Speed: mainland mobiles, nearly all input, are checked with phonenumbers' own CN mobile pattern compiled
once (``PhoneMetadata``), not by building a ``PhoneNumber`` object per row (≈15 µs); anything else goes
through ``phonenumbers.parse``. Carrier names come from phonenumbers' prefix data (``carrierdata``), read into one dict.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hmac
import os
import re
from pathlib import Path

from engine import SmsguardError

VIRTUAL_PREFIXES = ("170", "171", "162", "165", "167")
"""MVNO (虚拟运营商) ranges: priced as ``virtual``, routed over their host network."""
_HOST_OF_VIRTUAL = {"162": "telecom", "165": "mobile", "167": "unicom"}  # when phonenumbers has no name
_CARRIER_NAMES = {"中国移动": "mobile", "中国联通": "unicom", "中国电信": "telecom", "中国广电": "broadnet"}
CARRIER_LABELS = {"mobile": "移动", "unicom": "联通", "telecom": "电信", "broadnet": "广电", "other": "其他"}

_FAST = re.compile(r"(?:\+?86|0086)?(1\d{10})")
_STRIP = str.maketrans("", "", " -()\t.\u3000")


class InvalidPhone(SmsguardError):
    code = "phone.invalid"


@dataclasses.dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    """``+8613812345678``"""
    carrier: str
    """Host network: mobile / unicom / telecom / broadnet / other."""
    virtual: bool
    """An MVNO number (170/171/162/165/167)."""

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
def _mobile_pattern() -> re.Pattern[str]:
    from phonenumbers import PhoneMetadata

    md = PhoneMetadata.metadata_for_region("CN")
    return re.compile(md.mobile.national_number_pattern)


@functools.cache
def _carrier_table() -> dict[str, str]:
    """phonenumbers' CN mobile prefix → carrier data (national prefixes of 2-4 digits after the leading 1)."""
    from phonenumbers.carrierdata import CARRIER_DATA

    return {k[2:]: _CARRIER_NAMES.get(v.get("zh", ""), "other") for k, v in CARRIER_DATA.items() if k.startswith("861")}


def _carrier(national: str) -> tuple[str, bool]:
    """(host carrier, virtual) of an 11-digit mainland mobile: longest prefix in phonenumbers' carrier data."""
    table = _carrier_table()
    for n in (7, 6, 5, 4, 3):
        host = table.get(national[:n])
        if host is not None:
            break
    else:
        host = _HOST_OF_VIRTUAL.get(national[:3], "other")
    return host, national[:3] in VIRTUAL_PREFIXES


def parse_phone(raw: str) -> Phone:
    """Validate and normalize one number (mainland China mobiles only); ``InvalidPhone`` says why not."""
    s = raw.strip().translate(_STRIP)
    m = _FAST.fullmatch(s)
    if m and _mobile_pattern().fullmatch(m.group(1)):
        national = m.group(1)
        host, virtual = _carrier(national)
        return Phone("+86" + national, host, virtual)
    import phonenumbers

    if not s:
        raise InvalidPhone("empty phone number", code="phone.empty")
    try:
        num = phonenumbers.parse(s, "CN")
    except phonenumbers.NumberParseException as e:
        raise InvalidPhone(f"not a phone number ({e._msg})") from None
    if not phonenumbers.is_valid_number(num):
        raise InvalidPhone("not a valid phone number")
    if num.country_code != 86:
        raise InvalidPhone("not a mainland China number (international SMS is not supported)", code="phone.foreign")
    if phonenumbers.number_type(num) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidPhone("not a mobile number (landlines cannot receive SMS)", code="phone.not_mobile")
    national = str(num.national_number)
    host, virtual = _carrier(national)
    return Phone("+86" + national, host, virtual)


def mask(phone: str) -> str:
    """``138****1234``: the first three and last four national digits; shorter input keeps less.

    >>> mask("+8613812341234")
    '138****1234'
    """
    digits = "".join(c for c in phone if c.isdigit())
    if phone.startswith("+86") or (len(digits) == 13 and digits.startswith("86")):
        digits = digits[2:]
    if len(digits) >= 8:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 3:
        return f"{digits[:1]}{'*' * (len(digits) - 2)}{digits[-1:]}"
    return "*" * len(digits)


def mask_raw(raw: str) -> str:
    """An invalid input, shown in reports without revealing it: digits masked, at most 32 characters."""
    raw = raw.strip()[:32]
    return mask(raw) if sum(c.isdigit() for c in raw) >= 8 else "".join("*" if c.isdigit() else c for c in raw)


class PhoneVault:
    """Encrypts, decrypts and hashes numbers with the deployment's key."""

    def __init__(self, key: bytes, mac_key: bytes) -> None:
        if len(key) != 32:
            raise SmsguardError("the phone key must be 32 bytes", where="phone.key", code="phone.key")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self._mac_key = mac_key

    def encrypt(self, e164: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, e164.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        blob = bytes(blob)
        return self._aead.decrypt(blob[:12], blob[12:], None).decode()

    def hash(self, e164: str) -> str:
        """``audit.phone_hash`` of the number (HMAC-SHA256 of the national digits, 64 hex), computed directly
        because imports hash a million numbers: equal numbers hash equal, nothing else is learnt."""
        national = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
        return hmac.digest(self._mac_key, national.encode(), "sha256").hex()

    def subject(self, e164: str) -> str:
        """The audit subject of a number: ``phone:<keyed hash>``."""
        return f"phone:{self.hash(e164)}"


def load_key(data_dir: Path) -> bytes:
    """``SMSGUARD_PHONE_KEY`` (base64 of 32 bytes) or ``<data_dir>/phone.key``, created 0600 on first use."""
    env = os.environ.get("SMSGUARD_PHONE_KEY")
    if env:
        try:
            key = base64.b64decode(env, validate=True)
        except ValueError:
            raise SmsguardError("must be base64", where="SMSGUARD_PHONE_KEY", code="phone.key") from None
        if len(key) != 32:
            raise SmsguardError("must decode to 32 bytes", where="SMSGUARD_PHONE_KEY", code="phone.key")
        return key
    path = Path(data_dir) / "phone.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".phone.key.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic and fails if another process won the race: everyone reads one key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    key = path.read_bytes()
    if len(key) != 32:
        raise SmsguardError(f"must hold 32 bytes, has {len(key)}", where=str(path), code="phone.key")
    return key


@functools.lru_cache(maxsize=8)
def vault_for(data_dir: Path) -> PhoneVault:
    from audit import load_phone_key

    return PhoneVault(load_key(data_dir), load_phone_key(data_dir))
