"""Deterministic replay: screen a stored verdict's text again under the exact policy, lexicon and model that
decided it (from the version store) and compare the answer byte for byte with what was stored.

A verdict row keeps the text, the answer as sent and the content hash of everything that decided it (text,
kind, signature, tenant, ``content_only``, versions). The kind is in the answer; ``content_only`` and a
signature passed separately are recovered by matching that content hash. The classifier's scores depend
(in the last digit) on the batch they were computed in, so the verdicts screened in the same call are
screened together again (see ``_screened_with``). A verdict whose request carried a
separate signature that is nowhere in its text cannot be rebuilt exactly, and the result says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Engine as Database
from sqlalchemy import select

from smsguard.engine import Engine, Message, NotFoundError, Versions

from ._versions import materialize

_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode
_SIGNATURE = re.compile(r"【([^【】]{1,30})】")
_ID_NULL = b'{"id":null,'


class _Head(msgspec.Struct):
    kind: str
    kind_inferred: bool


_decode_head = msgspec.json.Decoder(_Head).decode


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A stored verdict's request, rebuilt: the message as screened and its ``content_only`` flag."""

    message: Message
    content_only: bool
    exact: bool
    """True when the rebuilt request hashes to the stored content hash (it is the request that was screened)."""


def stored_request(text: str, tenant: str, verdict_json: str | bytes, content_hash: str, versions: Versions,
                   ) -> StoredRequest:
    from smsguard.engine import content_hash as hash_of  # the API's own definition

    head = _decode_head(verdict_json)
    kind = None if head.kind_inferred else head.kind
    plain = Message(text=text, kind=kind, tenant=tenant)  # type: ignore[arg-type]
    for content_only in (False, True):  # the common request first: no separate signature
        if hash_of(versions, tenant, plain, content_only) == content_hash:
            return StoredRequest(plain, content_only, True)
    for signature in dict.fromkeys(_SIGNATURE.findall(text)):
        m = Message(text=text, kind=kind, signature=signature, tenant=tenant)  # type: ignore[arg-type]
        for content_only in (False, True):
            if hash_of(versions, tenant, m, content_only) == content_hash:
                return StoredRequest(m, content_only, True)
    return StoredRequest(plain, False, False)


def answer_bytes(verdict_json: bytes, stored: bytes) -> bytes:
    """The API's answer for a fresh verdict (its JSON with ``id`` null), with the stored answer's ``id``,
    ``verdict_id`` and ``cached`` (what the API adds around the engine's verdict)."""
    was = _decode_any(stored)
    tail = verdict_json[len(_ID_NULL):-1]
    return b"".join((b'{"id":', _encode(was.get("id")), b",", tail, b',"verdict_id":', _encode(was.get("verdict_id")),
                     b',"cached":', _encode(bool(was.get("cached"))), b"}"))


@dataclass
class ReplayResult:
    verdict_id: str
    identical: bool
    versions: dict[str, str]
    request_exact: bool
    content_only: bool
    differences: list[str] = field(default_factory=list)
    stored: str = ""
    replayed: str = ""

    def to_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def differences(a: Any, b: Any, path: str = "$", out: list[str] | None = None, limit: int = 50) -> list[str]:
    """JSON paths where ``a`` (stored) and ``b`` (replayed) differ, with both values."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: {'missing' if k not in a else _short(a[k])} stored, "
                           f"{'missing' if k not in b else _short(b[k])} replayed")
            else:
                differences(a[k], b[k], f"{path}.{k}", out, limit)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} item(s) stored, {len(b)} replayed")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            differences(x, y, f"{path}[{i}]", out, limit)
    elif a != b or type(a) is not type(b):
        out.append(f"{path}: {_short(a)} stored, {_short(b)} replayed")
    return out


def _short(v: Any) -> str:
    s = _encode(v).decode()
    return s if len(s) <= 80 else s[:77] + "..."


def _screened_with(db: Database, row: Any) -> tuple[str, list[Any]]:
    """(id of the verdict that was actually screened, the rows screened in the same engine call, in order).

    The classifier scores a batch at once, and onnxruntime's float sums depend on the batch (the last digit
    of a score can change), so a byte-exact replay screens the same batch again. A cached verdict was
    screened by the first request that stored its content hash uncached; that request's uncached rows (same
    tenant and time, ids in order) are the one ``screen_many`` call the API made."""
    from smsguard.storage._models import VerdictRecord

    t = VerdictRecord.__table__
    cols = (t.c.id, t.c.text, t.c.verdict, t.c.content_hash)
    with db.connect() as conn:
        origin = row
        if row.cached:
            origin = conn.execute(
                select(t.c.id, t.c.created_at)
                .where(t.c.content_hash == row.content_hash, t.c.tenant_id == row.tenant_id, t.c.cached.is_(False))
                .order_by(t.c.created_at, t.c.id).limit(1)
            ).first() or row
        batch = conn.execute(
            select(*cols).where(t.c.tenant_id == row.tenant_id, t.c.created_at == origin.created_at,
                                t.c.cached.is_(False)).order_by(t.c.id)
        ).all()
        if not any(r.id == origin.id for r in batch):  # never expected; fall back to the row alone
            batch = conn.execute(select(*cols).where(t.c.id == origin.id)).all()
    return origin.id, batch


def replay(db: Database, verdict_id: str, *, engine: Engine | None = None) -> ReplayResult:
    """Replay verdict ``verdict_id``. ``engine`` (tests, benches) skips rebuilding from the version store; it
    must have the verdict's versions."""
    from smsguard.storage._models import Tenant, VerdictRecord

    t = VerdictRecord.__table__
    with db.connect() as conn:
        row = conn.execute(
            select(t, Tenant.name.label("tenant_name")).join(Tenant.__table__, Tenant.id == t.c.tenant_id)
            .where(t.c.id == verdict_id)
        ).one_or_none()
    if row is None:
        raise NotFoundError(f"no stored verdict {verdict_id!r}", where="VERDICT_ID", code="audit.no_verdict")
    want = Versions(policy=row.policy_version, lexicon=row.lexicon_version, model=row.model_version)
    if engine is None:
        engine = materialize(db, want)
    elif engine.versions != want:
        raise ValueError(f"engine has versions {engine.versions}, the verdict {want}")
    origin, batch = _screened_with(db, row)
    requests = [stored_request(r.text, row.tenant_name, r.verdict, r.content_hash, want) for r in batch]
    request = requests[[r.id for r in batch].index(origin)]
    content_only = request.content_only
    fresh = engine.screen_many([q.message for q in requests if q.content_only == content_only],
                               content_only=content_only)[
        [r.id for r, q in zip(batch, requests, strict=True) if q.content_only == content_only].index(origin)]
    stored = row.verdict.encode()
    replayed = answer_bytes(_encode(fresh), stored)
    result = ReplayResult(verdict_id=verdict_id, identical=replayed == stored,
                          versions={"policy": want.policy, "lexicon": want.lexicon, "model": want.model},
                          request_exact=request.exact, content_only=request.content_only,
                          stored=row.verdict, replayed=replayed.decode())
    if not result.identical:
        result.differences = differences(_decode_any(stored), _decode_any(replayed)) or ["byte order or spacing"]
    return result
