"""Signature applications: a tenant files a signature with documents, a platform reviewer decides it, each
carrier channel's filing status is tracked, and only an approved signature may send (``require_approved``).

Every status change is an audit event and a webhook event (``signature.status``, ``signature.channel``) in the
same transaction, so nothing is announced that was not committed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from smsguard import audit, review, webhooks
from smsguard.core import ConflictError, ForbiddenError, InputError, NotFoundError

from ._documents import MAX_DOCUMENTS, DocumentVault, check_size, safe_filename, sha256, sniff
from ._tables import CHANNEL_STATUSES, channel_status, documents, signatures

KINDS = ("company", "app", "trademark", "government", "public_institution", "website", "public_account", "store")
USES = ("self", "others")
_NAME = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9]{2,20}$")  # 2-20 chars, no brackets or punctuation


class SignatureNotApproved(ForbiddenError):
    """A batch names a signature that is filed but not approved (or not filed while the tenant files)."""


def _now() -> datetime:
    return datetime.now(UTC)


def check_name(name: str) -> str:
    name = name.strip().strip("【】")
    if not _NAME.match(name):
        raise InputError("a signature is 2-20 Chinese characters, letters or digits, without 【】 or punctuation",
                         where="$.name", code="signature.name")
    return name


def apply(
    db: Engine, vault: DocumentVault, tenant_id: int, *, name: str, kind: str, use: str,
    files: Sequence[tuple[str, bytes]], actor: str, channels: Sequence[str] = (),
) -> dict[str, Any]:
    """File an application; ``files`` are (client file name, bytes). All checks run before anything is stored."""
    name = check_name(name)
    if kind not in KINDS:
        raise InputError(f"type must be one of {', '.join(KINDS)}", where="$.type", code="signature.type")
    if use not in USES:
        raise InputError("use must be self or others", where="$.use", code="signature.use")
    if not files:
        raise InputError("upload at least one qualification document", where="$.documents", code="document.missing")
    if len(files) > MAX_DOCUMENTS:
        raise InputError(f"at most {MAX_DOCUMENTS} documents", where="$.documents", code="document.count")
    checked = []
    for i, (fname, data) in enumerate(files):
        where = f"$.documents[{i}]"
        check_size(data, where=where)
        ctype = sniff(data, where=where)
        checked.append((safe_filename(fname, ctype), ctype, data))
    now = _now()
    with db.begin() as conn:
        existing = conn.execute(select(signatures.c.id, signatures.c.status).where(
            signatures.c.tenant_id == tenant_id, signatures.c.name == name)).first()
        if existing is not None:
            raise ConflictError(f"signature {name} is already filed (id {existing.id}, {existing.status})",
                                where="$.name", code="signature.exists")
        sid = conn.execute(insert(signatures).values(
            tenant_id=tenant_id, name=name, kind=kind, use=use, status="pending", created_at=now,
        )).inserted_primary_key[0]
        for fname, ctype, data in checked:
            conn.execute(insert(documents).values(
                signature_id=sid, filename=fname, content_type=ctype, size=len(data), sha256=sha256(data),
                data_enc=vault.encrypt(data), created_at=now))
        for ch in channels:
            conn.execute(insert(channel_status).values(signature_id=sid, channel=ch, status="pending", updated_at=now))
        _to_review(conn, tenant_id, sid, name=name, kind=kind, use=use, ref=str(sid))
        audit.append(conn, event_type="signature.status", actor=actor, tenant_id=tenant_id, subject=f"signature:{sid}",
                     payload={"status": "pending", "name": name, "kind": kind, "use": use,
                              "documents": [c[1] for c in checked]})
        webhooks.emit(conn, tenant_id=tenant_id, event_type="signature.status", subject=f"signature:{sid}",
                      payload={"signature_id": sid, "name": name, "status": "pending"})
    return get(db, tenant_id, sid)


def _row(conn: Connection, tenant_id: int | None, sid: int) -> Any:
    q = select(signatures).where(signatures.c.id == sid)
    if tenant_id is not None:  # None: a platform reviewer, who sees every tenant's
        q = q.where(signatures.c.tenant_id == tenant_id)
    row = conn.execute(q).first()
    if row is None:
        raise NotFoundError(f"no signature {sid}", where="path signature_id", code="signature.not_found")
    return row


def _view(conn: Connection, row: Any) -> dict[str, Any]:
    docs = conn.execute(select(documents.c.id, documents.c.filename, documents.c.content_type, documents.c.size,
                               documents.c.sha256).where(documents.c.signature_id == row.id)
                        .order_by(documents.c.id)).all()
    chans = conn.execute(select(channel_status).where(channel_status.c.signature_id == row.id)
                         .order_by(channel_status.c.channel)).all()
    return {
        "id": row.id, "tenant_id": row.tenant_id, "name": row.name, "type": row.kind, "use": row.use,
        "status": row.status, "reason": row.reason,
        "created_at": row.created_at.isoformat(), "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "documents": [{"id": d.id, "filename": d.filename, "content_type": d.content_type, "size": d.size,
                       "sha256": d.sha256} for d in docs],
        "channels": [{"channel": c.channel, "status": c.status, "note": c.note} for c in chans],
    }


def get(db: Engine, tenant_id: int | None, sid: int) -> dict[str, Any]:
    with db.connect() as conn:
        return _view(conn, _row(conn, tenant_id, sid))


def list_signatures(db: Engine, tenant_id: int | None, *, status: str | None = None) -> list[dict[str, Any]]:
    q = select(signatures).order_by(signatures.c.id)
    if tenant_id is not None:
        q = q.where(signatures.c.tenant_id == tenant_id)
    if status is not None:
        if status not in ("pending", "approved", "rejected"):
            raise InputError("status must be pending, approved or rejected", where="query status",
                             code="signature.status")
        q = q.where(signatures.c.status == status)
    with db.connect() as conn:
        return [_view(conn, r) for r in conn.execute(q).all()]


def document(db: Engine, vault: DocumentVault, tenant_id: int | None, sid: int, doc_id: int) -> tuple[str, str, bytes]:
    """(filename, content type, plain bytes) of one document of a signature the caller may see."""
    with db.connect() as conn:
        _row(conn, tenant_id, sid)
        d = conn.execute(select(documents).where(documents.c.id == doc_id, documents.c.signature_id == sid)).first()
    if d is None:
        raise NotFoundError(f"no document {doc_id}", where="path document_id", code="document.not_found")
    return d.filename, d.content_type, vault.decrypt(d.data_enc)


def decide(db: Engine, sid: int, *, approve: bool, reason: str, reviewer: str) -> dict[str, Any]:
    """A platform reviewer's decision; a rejection needs a reason (it is what the customer reads)."""
    reason = reason.strip()
    if not approve and not reason:
        raise InputError("a rejection needs a reason for the customer", where="reason", code="signature.reason")
    with db.begin() as conn:
        row = _row(conn, None, sid)
        if row.status != "pending":
            raise ConflictError(f"signature {sid} is {row.status}, not pending", where="path signature_id",
                                code="signature.state")
        # its item in the main review queue is closed with the same decision (this page is the decision)
        review.settle(conn, source="signature", source_ref=str(sid), approved=approve, reason=reason or None,
                      actor=reviewer)
        _record(conn, row, approve=approve, reason=reason, reviewer=reviewer)
        return _view(conn, _row(conn, None, sid))


def _record(conn: Connection, row: Any, *, approve: bool, reason: str, reviewer: str) -> None:
    status = "approved" if approve else "rejected"
    sid = row.id
    conn.execute(update(signatures).where(signatures.c.id == sid).values(
        status=status, reason=reason or None, reviewer=reviewer, decided_at=_now()))
    webhooks.emit(conn, tenant_id=row.tenant_id, event_type="signature.status", subject=f"signature:{sid}",
                  payload={"signature_id": sid, "name": row.name, "status": status, "reason": reason or None})
    audit.append(conn, event_type="signature.status", actor=reviewer, tenant_id=row.tenant_id,
                 subject=f"signature:{sid}", payload={"status": status, "reason": reason, "name": row.name})


def _to_review(conn: Connection, tenant_id: int, sid: int, *, name: str, kind: str, use: str, ref: str) -> None:
    """An application is also an item of the main review queue (source ``signature``, its SLA timer and
    filters): deciding it there or on its own page (with the documents) decides the signature."""
    text = f"【{name}】签名报备申请：主体类型 {kind}，用途 {'自用' if use == 'self' else '他用'}"
    verdict = {"decision": "review", "score": 0.0, "kind": "signature", "signature": f"【{name}】",
               "reasons": [{"code": "signature.application", "category": "signature", "severity": "low",
                            "source": "filing", "action": "review", "start": 0, "end": len(name) + 2,
                            "message": "signature application: check the qualification documents"}]}
    review.submit(conn, tenant_id=tenant_id, source="signature", source_ref=ref, text=text, verdict=verdict)


def on_signature_decision(conn: Connection, decision: Any) -> None:
    """Review handler (source ``signature``): a decision in the main queue decides the application, in the
    decision's transaction. Decided on its own page meanwhile: nothing to do."""
    sid = int(str(decision.source_ref).split(":")[0])
    row = conn.execute(select(signatures).where(signatures.c.id == sid)).first()
    if row is None or row.status != "pending":
        return
    if not decision.approved and not (decision.reason or "").strip():
        raise InputError("a rejection needs a reason for the customer", where="reason", code="signature.reason")
    reviewer = f"user:{decision.deciders[-1]}" if decision.deciders else "system:review"
    _record(conn, row, approve=decision.approved, reason=(decision.reason or "").strip(), reviewer=reviewer)


def resubmit(db: Engine, vault: DocumentVault, tenant_id: int, sid: int, *, files: Sequence[tuple[str, bytes]],
             actor: str) -> dict[str, Any]:
    """Back to pending after a rejection, optionally with more documents."""
    checked = []
    for i, (fname, data) in enumerate(files):
        check_size(data, where=f"$.documents[{i}]")
        ctype = sniff(data, where=f"$.documents[{i}]")
        checked.append((safe_filename(fname, ctype), ctype, data))
    now = _now()
    with db.begin() as conn:
        row = _row(conn, tenant_id, sid)
        if row.status != "rejected":
            raise ConflictError(f"signature {sid} is {row.status}; only a rejected one is resubmitted",
                                where="path signature_id", code="signature.state")
        for fname, ctype, data in checked:
            conn.execute(insert(documents).values(
                signature_id=sid, filename=fname, content_type=ctype, size=len(data), sha256=sha256(data),
                data_enc=vault.encrypt(data), created_at=now))
        conn.execute(update(signatures).where(signatures.c.id == sid).values(status="pending", decided_at=None))
        _to_review(conn, tenant_id, sid, name=row.name, kind=row.kind, use=row.use,
                   ref=f"{sid}:{int(now.timestamp() * 1000)}")
        audit.append(conn, event_type="signature.status", actor=actor, tenant_id=tenant_id,
                     subject=f"signature:{sid}", payload={"status": "pending", "resubmitted": True,
                                                          "previous_reason": row.reason})
        webhooks.emit(conn, tenant_id=tenant_id, event_type="signature.status", subject=f"signature:{sid}",
                      payload={"signature_id": sid, "name": row.name, "status": "pending", "resubmitted": True})
        return _view(conn, _row(conn, tenant_id, sid))


def set_channel(db: Engine, sid: int, channel: str, status: str, *, note: str = "", reviewer: str) -> dict[str, Any]:
    """Record a carrier channel's filing result (the channel names are those of channels.yaml)."""
    if status not in CHANNEL_STATUSES:
        raise InputError(f"channel status must be one of {', '.join(CHANNEL_STATUSES)}", where="status",
                         code="signature.channel_status")
    if not channel or len(channel) > 64:
        raise InputError("channel name must be 1-64 characters", where="channel", code="signature.channel")
    with db.begin() as conn:
        row = _row(conn, None, sid)
        values = {"status": status, "note": note or None, "updated_at": _now()}
        done = conn.execute(update(channel_status).where(channel_status.c.signature_id == sid,
                                                         channel_status.c.channel == channel).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(channel_status).values(signature_id=sid, channel=channel, **values))
        audit.append(conn, event_type="signature.channel", actor=reviewer, tenant_id=row.tenant_id,
                     subject=f"signature:{sid}", payload={"channel": channel, "status": status, "note": note})
        webhooks.emit(conn, tenant_id=row.tenant_id, event_type="signature.channel", subject=f"signature:{sid}",
                      payload={"signature_id": sid, "name": row.name, "channel": channel, "status": status})
        return _view(conn, row)


def require_approved(conn: Connection, tenant_id: int, signature: str) -> None:
    """Refuse a send under a signature that is not approved.

    Migration path: a tenant that has filed no signature at all still sends under the policy.yaml
    ``signatures`` list (screened as ``signature.unregistered``); from its first application on, only its
    approved filed signatures send."""
    filed = conn.execute(select(func.count()).select_from(signatures)
                         .where(signatures.c.tenant_id == tenant_id)).scalar_one()
    if not filed:
        return
    status = conn.execute(select(signatures.c.status).where(
        signatures.c.tenant_id == tenant_id, signatures.c.name == signature.strip().strip("【】"))).scalar()
    if status != "approved":
        state = "not filed" if status is None else status
        raise SignatureNotApproved(f"signature 【{signature}】 is {state}; only an approved signature can send",
                                   where="$.signature", code="signature.not_approved")
