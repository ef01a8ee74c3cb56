"""The chain key: a MAC over every event's hash and over the chain head.

SHA-256 alone lets anyone with write access to SQL edit an event and re-hash everything after it. With a
MAC (HMAC-SHA256 under a secret key) on each event and on ``audit_head``, a rewrite made without the key
fails at exactly the first event it touched, and a cut tail fails at the head, even with no checkpoint.

The key is derived from the audit signing key (one deployment secret, not two). A process that appends
uses the key given to :func:`use_signing_key` (what a deployment with a shared secret calls at start-up);
otherwise it loads ``<SMSGUARD_DATA_DIR>/audit-signing.key`` on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_DOMAIN = b"smsguard audit chain key v1\0"
_lock = threading.Lock()
_process_key: bytes | None = None


def chain_key(signing_key: Ed25519PrivateKey) -> bytes:
    """The MAC key that belongs to ``signing_key`` (a one-way derivation: the MAC key reveals nothing of it)."""
    raw = signing_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    return hashlib.sha256(_DOMAIN + raw).digest()


def use_signing_key(signing_key: Ed25519PrivateKey | None) -> None:
    """Make this process MAC its appends with the key derived from ``signing_key`` (None: back to the default)."""
    global _process_key
    with _lock:
        _process_key = None if signing_key is None else chain_key(signing_key)


def process_chain_key() -> bytes:
    """The key appends use: the one set by :func:`use_signing_key`, else the local signing key's."""
    global _process_key
    key = _process_key
    if key is not None:
        return key
    with _lock:
        if _process_key is None:
            from smsguard.core import get_settings, load_secrets

            from ._signing import load_signing_key

            _process_key = chain_key(load_signing_key(load_secrets(get_settings()).audit_signing_key))
        return _process_key


def event_mac(key: bytes, event_hash: str) -> str:
    return hmac.new(key, b"event\0" + event_hash.encode(), hashlib.sha256).hexdigest()


def head_mac(key: bytes, last_id: int, last_hash: str, keyed_from: int) -> str:
    return hmac.new(key, f"head\0{last_id}\0{last_hash}\0{keyed_from}".encode(), hashlib.sha256).hexdigest()
