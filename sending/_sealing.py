"""How a phone number appears in Redis: sealed (the vault's ciphertext) or as a keyed hash, never plain.

Redis is not encrypted at rest and its keys show up in ``MONITOR``, ``SCAN`` and dumps (issue 15, failure 10:
``…:msg:*`` hashes held the raw number). So every number the sending side writes to Redis goes through a
:class:`PhoneSeal`: the outbox entry, the message hash and the events stream carry ``seal(number)``, which
only a process holding the deployment's phone key can ``open``; orphan receipts are filed under ``tag(number)``,
a keyed hash that both sides of a lost submit response compute alike. The adapters still get the plain
number: the gateway worker opens it just before it routes and submits.
"""

from __future__ import annotations

import base64
from typing import Protocol

from smsguard.core import ConfigError

SEALED = "e:"
"""Prefix of a sealed number: a plain number never starts with it (digits or ``+``)."""


class PhoneCipher(Protocol):
    """What a seal needs of ``smsguard.phones.PhoneVault`` (sending does not depend on phones)."""

    def encrypt(self, e164: str) -> bytes: ...
    def decrypt(self, blob: bytes) -> str: ...
    def hash(self, e164: str) -> str: ...


class SealError(ConfigError):
    """A sealed number this process cannot open (another deployment's key, or no key at all)."""

    code = "sending.phone_key"


def orphan_phone(phone: str) -> str:
    """The number as orphan receipts are filed under: a peer reports ``8613800138000`` for our
    ``+8613800138000`` (SMPP sends it without the +), so both sides use the national form."""
    digits = phone.lstrip("+")
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


class PhoneSeal(Protocol):
    def seal(self, phone: str) -> str: ...
    def open(self, token: str) -> str: ...
    def tag(self, phone: str) -> str: ...


class PlainPhones:
    """No key: numbers stay as they are. For tests and benchmarks of the sending side alone; every process of
    a deployment seals (``VaultPhones``). It refuses a sealed number rather than submit ``e:…`` to a carrier."""

    def seal(self, phone: str) -> str:
        return phone

    def open(self, token: str) -> str:
        if token.startswith(SEALED):
            raise SealError("a sealed phone number reached a process without the phone key")
        return token

    def tag(self, phone: str) -> str:
        return orphan_phone(phone)


class VaultPhones:
    """Seals with the deployment's phone vault (AES-GCM, versioned keys), tags with its keyed hash."""

    def __init__(self, vault: PhoneCipher) -> None:
        self.vault = vault

    def seal(self, phone: str) -> str:
        return sealed_ciphertext(self.vault.encrypt(phone))

    def open(self, token: str) -> str:
        if not token.startswith(SEALED):
            return token  # written before sealing existed (an upgrade with messages in flight)
        try:
            return self.vault.decrypt(base64.b64decode(token[len(SEALED):]))
        except Exception as e:  # InvalidTag, bad base64: another deployment's key or a damaged entry
            raise SealError(f"cannot open a sealed phone number ({type(e).__name__}): is this process using "
                            "the deployment's phone key?") from e

    def tag(self, phone: str) -> str:
        return "h" + self.vault.hash(orphan_phone(phone))


def sealed_ciphertext(blob: bytes) -> str:
    """A number the vault already encrypted (SQL's ``phone_enc``), sealed without decrypting it."""
    return SEALED + base64.b64encode(bytes(blob)).decode()


PLAIN = PlainPhones()
