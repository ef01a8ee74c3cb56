"""The four secrets every process of one deployment must share, loaded from the settings.

- phone encryption keys (AES-256-GCM, versioned: the first encrypts, every one decrypts),
- the phone hash key (HMAC-SHA256: the name of a number in SQL, Redis and the audit log),
- the web session secret (CSRF tokens of the console and the review queue),
- the audit signing key (Ed25519, PEM: signs audit checkpoints).

Each comes from its variable (``SMSGUARD_PHONE_KEY``…), else the file its ``…_FILE`` variable names, else
``SMSGUARD_SECRETS_DIR/<file>``. With embedded defaults (no ``DATABASE_URL``) a missing one is generated
under the data directory, so the quick start needs no configuration. With ``DATABASE_URL`` set a missing
one is an error naming the variable: two hosts that each generated their own keys would not see each
other's opt-outs (the hash differs) and could not decrypt each other's numbers.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import SettingsError
from ._settings import VARIABLES, Settings

PHONE_KEY_FILE = "phone.key"
PHONE_HASH_KEY_FILE = "phone-hash.key"
SESSION_SECRET_FILE = "session-secret"
AUDIT_SIGNING_KEY_FILE = "audit-signing.key"


@dataclass(frozen=True, slots=True)
class Secrets:
    phone_keys: tuple[tuple[int, bytes], ...] = field(repr=False)
    """(key id, 32-byte key), the current (encrypting) key first."""
    phone_hash_key: bytes = field(repr=False)
    session_secret: str = field(repr=False)
    audit_signing_key: bytes = field(repr=False)
    """PEM (PKCS#8) of the Ed25519 private key."""

    @property
    def phone_key_id(self) -> int:
        return self.phone_keys[0][0]

    @property
    def phone_key(self) -> bytes:
        return self.phone_keys[0][1]


def parse_phone_keys(raw: bytes, *, where: str) -> tuple[tuple[int, bytes], ...]:
    """``ID:BASE64[,ID:BASE64…]``, a bare base64 key (id 1) or 32 raw bytes (id 1, the file format of the
    embedded default)."""
    if len(raw) == 32 and not raw.isascii():
        return ((1, raw),)
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SettingsError(f"must be 32 bytes or ID:BASE64 keys, has {len(raw)} bytes", where=where) from None
    if len(raw) == 32 and ":" not in text:
        try:  # 32 raw bytes that happen to be ASCII
            base64.b64decode(text, validate=True)
        except binascii.Error:
            return ((1, raw),)
    keys: list[tuple[int, bytes]] = []
    for i, part in enumerate(p.strip() for p in text.split(",")):
        key_id, sep, b64 = part.partition(":")
        if not sep:
            key_id, b64 = "1", part
        try:
            kid = int(key_id)
            key = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise SettingsError(f"key {i + 1}: must be ID:BASE64 (a number, a colon, base64)", where=where) from None
        if not 1 <= kid <= 255:
            raise SettingsError(f"key {i + 1}: the id must be 1..255, got {kid}", where=where)
        if len(key) != 32:
            raise SettingsError(f"key {i + 1}: must decode to 32 bytes, got {len(key)}", where=where)
        if any(k == kid for k, _ in keys):
            raise SettingsError(f"key id {kid} appears twice", where=where)
        keys.append((kid, key))
    if not keys:
        raise SettingsError("no key", where=where)
    return tuple(keys)


def format_phone_keys(keys: tuple[tuple[int, bytes], ...]) -> str:
    return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in keys)


def _hex(raw: bytes, *, where: str) -> bytes:
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise SettingsError("must be hex", where=where) from None
    if len(key) < 16:
        raise SettingsError(f"must be at least 16 bytes (32 hex digits), got {len(key)}", where=where)
    return key


def _text(raw: bytes, *, where: str) -> str:
    text = raw.decode("utf-8", "replace").strip()
    if len(text) < 16:
        raise SettingsError("must be at least 16 characters", where=where)
    return text


def _pem(raw: bytes, *, where: str) -> bytes:
    if b"PRIVATE KEY" not in raw:
        raise SettingsError("must be a PEM private key (Ed25519, PKCS#8)", where=where)
    return raw


def _new_phone_key() -> bytes:
    return os.urandom(32)


def _new_hex() -> bytes:
    return (secrets.token_hex(32) + "\n").encode()


def _new_signing_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# file name, value variable (or None), file variable, generator
_SPECS: tuple[tuple[str, str | None, str, Callable[[], bytes]], ...] = (
    (PHONE_KEY_FILE, "SMSGUARD_PHONE_KEY", "SMSGUARD_PHONE_KEY_FILE", _new_phone_key),
    (PHONE_HASH_KEY_FILE, "SMSGUARD_PHONE_HASH_KEY", "SMSGUARD_PHONE_HASH_KEY_FILE", _new_hex),
    (SESSION_SECRET_FILE, "SMSGUARD_SESSION_SECRET", "SMSGUARD_SESSION_SECRET_FILE", _new_hex),
    (AUDIT_SIGNING_KEY_FILE, None, "SMSGUARD_AUDIT_SIGNING_KEY_FILE", _new_signing_key),
)


def create_once(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (0600) unless it exists; atomic, and when two processes race, both end up
    reading the one file that won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def generate_secrets(directory: Path) -> list[Path]:
    """Create the four secret files in ``directory`` (those missing); returns the ones written."""
    written = []
    for name, _, _, new in _SPECS:
        path = Path(directory) / name
        if not path.exists():
            create_once(path, new())
            written.append(path)
    return written


def _raw(settings: Settings, name: str, value_var: str | None, file_var: str, new: Callable[[], bytes]
         ) -> tuple[bytes, str]:
    """The secret's bytes and where they came from (a variable name, or a file path)."""
    fields = {v.name: v.field for v in VARIABLES}
    if value_var is not None and (value := getattr(settings, fields[value_var])):
        return value.encode(), value_var
    configured: Path | None = getattr(settings, fields[file_var])
    where = file_var
    if configured is None and settings.secrets_dir is not None:
        configured, where = settings.secrets_dir / name, "SMSGUARD_SECRETS_DIR"
    if configured is not None:
        try:
            return configured.read_bytes(), f"{where} ({configured})"
        except OSError as e:
            raise SettingsError(f"cannot read {configured}: {e.strerror or e}", where=where) from None
    if settings.database_url is not None:
        hint = f"{value_var} or {file_var}" if value_var else file_var
        raise SettingsError(
            f"not configured: with DATABASE_URL set every host must share this secret; set {hint} or "
            "SMSGUARD_SECRETS_DIR (`smsguard keys init DIR` writes one)",
            where=value_var or file_var,
        )
    path = settings.data_dir / name
    if not path.exists():
        create_once(path, new())
    return path.read_bytes(), str(path)


def load_secrets(settings: Settings) -> Secrets:
    """The deployment's secrets (generated under the data directory when embedded); SettingsError names the
    variable of the first one missing or malformed."""
    raw = {name: _raw(settings, name, value_var, file_var, new) for name, value_var, file_var, new in _SPECS}
    data, where = raw[PHONE_KEY_FILE]
    phone_keys = parse_phone_keys(data, where=where)
    data, where = raw[PHONE_HASH_KEY_FILE]
    hash_key = _hex(data, where=where)
    data, where = raw[SESSION_SECRET_FILE]
    session = _text(data, where=where)
    data, where = raw[AUDIT_SIGNING_KEY_FILE]
    return Secrets(phone_keys, hash_key, session, _pem(data, where=where))


def missing_secrets(settings: Settings) -> list[str]:
    """The variables of the secrets ``load_secrets`` would refuse (for a start-up check that names them all)."""
    missing = []
    for name, value_var, file_var, new in _SPECS:
        try:
            _raw(settings, name, value_var, file_var, new)
        except SettingsError as e:
            missing.append(e.where or file_var)
    return missing
