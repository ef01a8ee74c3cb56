"""Qualification documents: sniffed by magic bytes, size-limited, encrypted at rest with the runtime's keys.

The client's content type and file name are never trusted: the type comes from the first bytes (PDF, PNG
or JPEG only; an EXE renamed ``.pdf`` has ``MZ`` there and is refused) and the name is reduced to safe
characters. The key is derived (HKDF, its own label) from the deployment's phone encryption keys, so no new
secret has to be distributed and a document key never equals a phone key.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence

from smsguard.core import InputError

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
MAX_DOCUMENTS = 5
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
_VERSION = 1
_INFO = b"smsguard filing document v1"
_UNSAFE = re.compile(r"[^\w.\-]+")


def sniff(data: bytes, *, where: str) -> str:
    """The content type by magic bytes, or an InputError (``document.type``)."""
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return ctype
    raise InputError("only PDF, PNG or JPEG files are accepted (checked by content, not by name)",
                     where=where, code="document.type")


def check_size(data: bytes, *, where: str) -> None:
    if not data:
        raise InputError("the document is empty", where=where, code="document.empty")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"a document may be at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB",
                         where=where, code="document.too_large")


def safe_filename(name: str, ctype: str) -> str:
    ext = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}[ctype]
    stem = _UNSAFE.sub("_", os.path.basename(name or "document").rsplit(".", 1)[0]).strip("._")[:80] or "document"
    return stem + ext


class DocumentVault:
    """AES-256-GCM with keys derived from the phone keys; ciphertext is ``version, key id, nonce, ct``."""

    def __init__(self, phone_keys: Sequence[tuple[int, bytes]]) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(key: bytes) -> AESGCM:
            return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key))

        self._keys = {kid: derive(k) for kid, k in phone_keys}
        self._kid = phone_keys[0][0]

    def encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(12)
        return bytes((_VERSION, self._kid)) + nonce + self._keys[self._kid].encrypt(nonce, data, _INFO)

    def decrypt(self, blob: bytes) -> bytes:
        blob = bytes(blob)
        return self._keys[blob[1]].decrypt(blob[2:14], blob[14:], _INFO)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_headers(filename: str) -> dict[str, str]:
    """Headers of a document download: always an attachment, never sniffed or run as HTML. The name goes in
    ``filename*`` (RFC 6266 / 5987) because headers are latin-1 and names are often Chinese."""
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store"}
