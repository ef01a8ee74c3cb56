"""The key of a verdict: what decides it, hashed (the verdict cache, stored verdicts, audit replay)."""

from __future__ import annotations

import hashlib

import msgspec

from ._verdict import Message, Versions

_encode = msgspec.json.Encoder().encode


def content_hash(versions: Versions, tenant: str, message: Message, content_only: bool) -> str:
    """What decides a verdict, hashed: the exact text, kind, signature, tenant (its policy overrides),
    ``content_only`` and the policy/lexicon/model versions. The text is not folded first, because a
    verdict's reasons carry offsets into the original text; the tenant is part of the key so one
    tenant can never learn from ``cached`` what another screened."""
    raw = _encode(
        (versions.policy, versions.lexicon, versions.model, tenant, message.kind, message.signature, content_only,
         message.text)
    )
    return hashlib.sha256(raw).hexdigest()
