"""Signed checkpoints over the chain head (Ed25519, ``cryptography``).

The private key lives in ``<data dir>/audit-signing.key`` (PEM, created 0600 on first use). A checkpoint
signs ``{"created_at", "event_hash", "event_id", "key_id"}`` (canonical JSON): whoever can rewrite the SQL
tables but not read that file cannot rewrite history up to a checkpoint without the signature failing.
Hand the public key (``smsguard audit public-key``) to auditors so they can check checkpoints themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, insert

from smsguard.core import Settings, load_secrets

from ._chain import ts_text
from ._tables import checkpoints

if TYPE_CHECKING:
    from ._anchor import Anchors, Schedule

KEY_FILE = "audit-signing.key"
_ENC = msgspec.json.Encoder(order="sorted")


def load_signing_key(source: Path | bytes) -> Ed25519PrivateKey:
    """The signing key: PEM bytes (a deployment's, ``Runtime.secrets.audit_signing_key``) or the embedded
    default's file in the data directory ``source`` (created 0600 on first use)."""
    if isinstance(source, bytes):
        pem, where = source, "SMSGUARD_AUDIT_SIGNING_KEY_FILE"
    else:
        where = str(Path(source) / KEY_FILE)
        pem = load_secrets(Settings(data_dir=Path(source))).audit_signing_key
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{where}: not an Ed25519 private key")
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_message(event_id: int, event_hash: str, created_at: str, kid: str) -> bytes:
    return _ENC.encode({"created_at": created_at, "event_hash": event_hash, "event_id": event_id, "key_id": kid})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    id: int
    created_at: str
    event_id: int
    event_hash: str
    key_id: str
    signature: str

    def to_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__slots__}


def sign_checkpoint(conn: Connection, key: Ed25519PrivateKey, event_id: int, event_hash: str) -> Checkpoint:
    """Insert a signed checkpoint over (event_id, event_hash) in the caller's transaction."""
    now = datetime.now(UTC)
    created = ts_text(now)
    kid = key_id(key)
    signature = key.sign(signed_message(event_id, event_hash, created, kid)).hex()
    new_id = conn.execute(
        insert(checkpoints)
        .values(created_at=now, event_id=event_id, event_hash=event_hash, key_id=kid, signature=signature)
        .returning(checkpoints.c.id)
    ).scalar_one()
    return Checkpoint(new_id, created, event_id, event_hash, kid, signature)


def checkpoint(
    db: Engine, data_dir: Path | bytes, *, only_if_moved: bool = False, anchors: Anchors | None = None,
    schedule: Schedule | None = None,
) -> Checkpoint | None:
    """Sign the current chain head with the key in ``data_dir`` (see ``audit._anchor.sign_head``, which takes
    the key itself). With ``only_if_moved``, skip (None) when the newest checkpoint already covers the head."""
    from ._anchor import sign_head

    return sign_head(db, load_signing_key(data_dir), anchors=anchors, schedule=schedule, only_if_moved=only_if_moved)


def check_signature(pub: Ed25519PublicKey, row: object) -> bool:
    created = ts_text(row.created_at)  # type: ignore[attr-defined]
    msg = signed_message(int(row.event_id), row.event_hash, created, row.key_id)  # type: ignore[attr-defined]
    try:
        pub.verify(bytes.fromhex(row.signature), msg)  # type: ignore[attr-defined]
    except (InvalidSignature, ValueError):
        return False
    return True
