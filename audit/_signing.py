"""Signed checkpoints over the chain head (Ed25519, ``cryptography``).

The private key lives in ``<data dir>/audit-signing.key`` (PEM, created 0600 on first use). A checkpoint
signs ``{"created_at", "event_hash", "event_id", "key_id"}`` (canonical JSON): whoever can rewrite the SQL
tables but not read that file cannot rewrite history up to a checkpoint without the signature failing.
Hand the public key (``smsguard audit public-key``) to auditors so they can check checkpoints themselves.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, insert, select, text

from ._chain import ts_text
from ._tables import checkpoints

KEY_FILE = "audit-signing.key"
_ENC = msgspec.json.Encoder(order="sorted")


def load_signing_key(data_dir: Path) -> Ed25519PrivateKey:
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:  # O_EXCL + 0600: never two keys, never world-readable, even for a moment
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
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


def checkpoint(db: Engine, data_dir: Path, *, only_if_moved: bool = False) -> Checkpoint | None:
    """Sign the current chain head. With ``only_if_moved``, skip (None) when the newest checkpoint already
    covers the head (periodic runs on an idle service, several workers)."""
    key = load_signing_key(data_dir)
    with db.begin() as conn:
        head = conn.execute(text("SELECT last_id, last_hash FROM audit_head WHERE id = 1")).one()
        if head.last_id == 0:
            return None
        if only_if_moved:
            newest = conn.execute(select(checkpoints.c.event_id).order_by(checkpoints.c.id.desc()).limit(1)).first()
            if newest is not None and newest.event_id >= head.last_id:
                return None
        return sign_checkpoint(conn, key, int(head.last_id), str(head.last_hash))


def check_signature(pub: Ed25519PublicKey, row: object) -> bool:
    created = ts_text(row.created_at)  # type: ignore[attr-defined]
    msg = signed_message(int(row.event_id), row.event_hash, created, row.key_id)  # type: ignore[attr-defined]
    try:
        pub.verify(bytes.fromhex(row.signature), msg)  # type: ignore[attr-defined]
    except (InvalidSignature, ValueError):
        return False
    return True
