"""Numbers at rest: AES-256-GCM encryption and the keyed hash (HMAC-SHA256) that names a number in lookups.

SQL holds ``phone_enc`` (nonce + ciphertext), ``phone_hash`` (opt-outs, caps, de-duplication, audit subjects
``phone:<hash>``) and ``phone_masked``; a raw number leaves only to the gateway. The keyed hash keeps a
stolen database from revealing numbers by brute force over the ~10^10 mobile numbers: without the key the
hashes are useless. It is HMAC of the national digits of the canonical number (``parse_phone``), so every
spelling of one number has one hash, and hashes written before this module existed stay valid.

Keys are deployment secrets, loaded once from the settings (``smsguard.core.load_secrets``: variables, files or
``SMSGUARD_SECRETS_DIR``; generated under the data directory only with embedded defaults). ``load_keys`` and
``vault_for`` read the embedded default's files; a process takes its vault from ``Runtime.vault``.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag

from smsguard.core import Settings, SmsguardError, load_secrets

from ._canonical import parse_phone

ENCRYPTION_KEY_VAR, ENCRYPTION_KEY_FILE = "SMSGUARD_PHONE_KEY", "phone.key"
HASH_KEY_VAR, HASH_KEY_FILE = "SMSGUARD_PHONE_HASH_KEY", "phone-hash.key"


class PhoneKeyError(SmsguardError):
    code = "phone.key"


def keyed_hash(national: str, mac_key: bytes) -> str:
    """HMAC-SHA256 (64 hex) of a canonical national number (``Phone.national``)."""
    return hmac.digest(mac_key, national.encode(), "sha256").hex()


def phone_hash(number: str, mac_key: bytes) -> str:
    """The keyed hash of any spelling of a number (``InvalidPhone`` if it is not one)."""
    return keyed_hash(parse_phone(number).national, mac_key)


def phone_subject(number: str, mac_key: bytes) -> str:
    """The audit subject of a number: ``phone:<keyed hash>``."""
    return "phone:" + phone_hash(number, mac_key)


_VERSIONED = 0x01  # first byte of a ciphertext that names its key


class PhoneVault:
    """Encrypts, decrypts and hashes canonical numbers (``Phone.e164``) with the deployment's keys.

    Keys are versioned: a ciphertext is ``0x01, key id, nonce (12), AES-GCM ciphertext``; the first key
    encrypts and every key decrypts, so ``smsguard keys rotate`` can re-encrypt under a new key while both are
    configured. A ciphertext from before key ids (``nonce, ciphertext``) is key 1's.
    """

    def __init__(self, keys: bytes | Sequence[tuple[int, bytes]], mac_key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        pairs = [(1, keys)] if isinstance(keys, bytes | bytearray) else list(keys)
        if not pairs or any(len(k) != 32 or not 1 <= kid <= 255 for kid, k in pairs):
            raise PhoneKeyError("phone encryption keys must be 32 bytes with ids 1..255", where="phone.key")
        if not mac_key:
            raise PhoneKeyError("the phone hash key must not be empty", where="phone.hash_key")
        self._keys = {kid: AESGCM(bytes(k)) for kid, k in pairs}
        self.key_id = pairs[0][0]
        self._aead = self._keys[self.key_id]
        self._head = bytes((_VERSIONED, self.key_id))
        self._mac_key = mac_key

    def encrypt(self, e164: str) -> bytes:
        nonce = os.urandom(12)
        return self._head + nonce + self._aead.encrypt(nonce, e164.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        blob = bytes(blob)
        if len(blob) > 30 and blob[0] == _VERSIONED and blob[1] in self._keys:
            try:
                return self._keys[blob[1]].decrypt(blob[2:14], blob[14:], None).decode()
            except InvalidTag:
                pass  # a legacy ciphertext whose random nonce happens to start like a versioned one
        legacy = self._keys.get(1)
        if legacy is None:
            raise InvalidTag
        return legacy.decrypt(blob[:12], blob[12:], None).decode()

    def current(self, blob: bytes) -> bool:
        """True when ``blob`` is encrypted under the encrypting key (nothing for ``keys rotate`` to do)."""
        blob = bytes(blob)
        if blob[:2] != self._head:
            return False
        try:
            self._aead.decrypt(blob[2:14], blob[14:], None)
        except InvalidTag:
            return False
        return True

    def hash(self, e164: str) -> str:
        """The keyed hash of a canonical number, computed directly (imports hash millions)."""
        national = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
        return keyed_hash(national, self._mac_key)

    def subject(self, e164: str) -> str:
        return f"phone:{self.hash(e164)}"

    def prefix_hash(self, prefix: str) -> str:
        """The keyed hash of a number prefix (national digits, e.g. the 7-digit HLR segment ``1380013``), kept
        apart from numbers' hashes: anti-pumping counts and blocks prefixes without writing their digits."""
        return keyed_hash("prefix:" + prefix, self._mac_key)


@dataclasses.dataclass(frozen=True, slots=True)
class PhoneKeys:
    encryption: bytes
    hashing: bytes


def load_keys(data_dir: Path) -> PhoneKeys:
    """The embedded default's keys in ``data_dir`` (generated there on first use; see ``smsguard.core``'s
    secrets). A deployment takes its keys from the settings instead: ``Runtime.vault``."""
    secrets = load_secrets(Settings(data_dir=Path(data_dir)))
    return PhoneKeys(secrets.phone_key, secrets.phone_hash_key)


def load_encryption_key(data_dir: Path) -> bytes:
    return load_keys(data_dir).encryption


def load_hash_key(data_dir: Path) -> bytes:
    return load_keys(data_dir).hashing


@functools.lru_cache(maxsize=8)
def vault_for(data_dir: Path) -> PhoneVault:
    """The vault of the keys ``load_keys(data_dir)`` finds (cached per data dir)."""
    secrets = load_secrets(Settings(data_dir=Path(data_dir)))
    return PhoneVault(secrets.phone_keys, secrets.phone_hash_key)
