"""Template versions (issue 19): edit a template, resubmit after a rejection with the reviewer's feedback in
its history, and a platform reviewer's approval of each version. Version 1 is the template as created; the
approved version's text is what ``sms_templates`` holds, so a batch always sends an approved version while
a newer one waits.

Webhook point: next to each ``template.status`` audit event below,
``smsguard.webhooks.emit(conn, tenant_id=…, event_type="template.status", …)`` (same transaction).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from smsguard import audit, filing, review, webhooks
from smsguard.core import ConflictError, InputError, NotFoundError

from ._common import Context, now
from ._tables import template_versions, templates
from ._templates import Template


def _template(conn: Connection, tenant_id: int | None, template_id: int) -> Any:
    q = select(templates).where(templates.c.id == template_id)
    if tenant_id is not None:
        q = q.where(templates.c.tenant_id == tenant_id)
    row = conn.execute(q).first()
    if row is None:
        raise NotFoundError(f"no template {template_id}", where="path template_id", code="template.not_found")
    return row


def _ensure_first(conn: Connection, t: Any) -> None:
    """Version 1 is the template as created (rows from before versions existed get it on first use)."""
    if conn.execute(select(func.count()).select_from(template_versions)
                    .where(template_versions.c.template_id == t.id)).scalar_one():
        return
    status = {"approved": "approved", "rejected": "rejected", "blocked": "rejected"}.get(t.status, "pending")
    conn.execute(insert(template_versions).values(
        template_id=t.id, tenant_id=t.tenant_id, version=1, signature=t.signature, body=t.body, status=status,
        reason=t.reason, actor="system:created", created_at=t.created_at or now(), decided_at=t.decided_at))


def _view(v: Any) -> dict[str, Any]:
    return {"id": v.id, "template_id": v.template_id, "version": v.version, "signature": v.signature,
            "body": v.body, "status": v.status, "reason": v.reason, "created_at": v.created_at.isoformat(),
            "decided_at": v.decided_at.isoformat() if v.decided_at else None}


def template_history(ctx: Context, tenant_id: int | None, template_id: int) -> list[dict[str, Any]]:
    """Every version, newest first, each with its status and the reviewer's reason."""
    with ctx.db.begin() as conn:
        t = _template(conn, tenant_id, template_id)
        _ensure_first(conn, t)
        rows = conn.execute(select(template_versions).where(template_versions.c.template_id == template_id)
                            .order_by(template_versions.c.version.desc())).all()
    return [_view(v) for v in rows]


def propose_version(ctx: Context, tenant_id: int, template_id: int, *, body: str, signature: str | None = None,
                    actor: str) -> dict[str, Any]:
    """A new version (an edit, or a resubmission after a rejection) waiting for a reviewer."""
    body = body.strip()
    if not body or len(body) > 1000 or "\x00" in body:
        raise InputError("body must be 1-1000 characters", where="$.body", code="template.body")
    with ctx.db.begin() as conn:
        t = _template(conn, tenant_id, template_id)
        sig = (signature or t.signature).strip().strip("【】")
        try:
            filing.check_name(sig)
        except InputError as e:
            e.where = "$.signature" if signature else "path template_id"  # the request's, or the template's own
            raise
        Template.compile(sig, body)  # a malformed ${variable} is the client's error now, not at send time
        _ensure_first(conn, t)
        last = conn.execute(select(template_versions).where(template_versions.c.template_id == template_id)
                            .order_by(template_versions.c.version.desc()).limit(1)).one()
        if last.status == "pending" and last.version > 1:
            raise ConflictError(f"version {last.version} is still waiting for review", where="path template_id",
                                code="template.version_pending")
        vid = conn.execute(insert(template_versions).values(
            template_id=template_id, tenant_id=tenant_id, version=last.version + 1, signature=sig, body=body,
            status="pending", actor=actor, created_at=now())).inserted_primary_key[0]
        _to_review(conn, tenant_id, vid, signature=sig, body=body, name=t.name, version=last.version + 1)
        audit.append(conn, event_type="template.status", actor=actor, tenant_id=tenant_id,
                     subject=f"template:{template_id}", payload={"version": last.version + 1, "status": "pending",
                                                                 "after": last.status})
        webhooks.emit(conn, tenant_id=tenant_id, event_type="template.status", subject=f"template:{template_id}",
                      payload={"template_id": template_id, "version": last.version + 1, "status": "pending"})
        return _view(conn.execute(select(template_versions).where(template_versions.c.id == vid)).one())


def pending_versions(ctx: Context) -> list[dict[str, Any]]:
    """The reviewer's queue: versions waiting, oldest first."""
    with ctx.db.connect() as conn:
        rows = conn.execute(select(template_versions, templates.c.name, templates.c.kind)
                            .join(templates, templates.c.id == template_versions.c.template_id)
                            .where(template_versions.c.status == "pending", template_versions.c.version > 1)
                            .order_by(template_versions.c.id)).all()
    return [{**_view(r), "name": r.name, "kind": r.kind, "tenant_id": r.tenant_id} for r in rows]


def decide_version(ctx: Context, version_id: int, *, approve: bool, reason: str, reviewer: str) -> dict[str, Any]:
    """A reviewer's decision on one version; approving it makes it the text that sends."""
    reason = reason.strip()
    if not approve and not reason:
        raise InputError("a rejection needs a reason for the customer", where="reason", code="template.reason")
    with ctx.db.begin() as conn:
        v = conn.execute(select(template_versions).where(template_versions.c.id == version_id)).first()
        if v is None:
            raise NotFoundError(f"no template version {version_id}", where="path version_id",
                                code="template.version_not_found")
        if v.status != "pending":
            raise ConflictError(f"version {v.version} is {v.status}", where="path version_id", code="template.state")
        # its item in the main review queue is closed with the same decision (this page is the decision)
        review.settle(conn, source="template_version", source_ref=str(version_id), approved=approve,
                      reason=reason or None, actor=reviewer)
        _record(conn, v, approve=approve, reason=reason, reviewer=reviewer)
        return _view(conn.execute(select(template_versions).where(template_versions.c.id == version_id)).one())


def _record(conn: Connection, v: Any, *, approve: bool, reason: str, reviewer: str) -> None:
    status = "approved" if approve else "rejected"
    at = now()
    conn.execute(update(template_versions).where(template_versions.c.id == v.id).values(
        status=status, reason=reason or None, reviewer=reviewer, decided_at=at))
    if approve:
        compiled = Template.compile(v.signature, v.body)
        conn.execute(update(templates).where(templates.c.id == v.template_id).values(
            signature=v.signature, body=v.body, variables=json.dumps(list(compiled.variables)),
            status="approved", reason=None, decided_at=at))
    webhooks.emit(conn, tenant_id=v.tenant_id, event_type="template.status", subject=f"template:{v.template_id}",
                  payload={"template_id": v.template_id, "version": v.version, "status": status,
                           "reason": reason or None})
    audit.append(conn, event_type="template.status", actor=reviewer, tenant_id=v.tenant_id,
                 subject=f"template:{v.template_id}", payload={"version": v.version, "status": status,
                                                               "reason": reason})


def _to_review(conn: Connection, tenant_id: int, vid: int, *, signature: str, body: str, name: str,
               version: int) -> None:
    """A proposed version is also an item of the main review queue (source ``template_version``, its SLA timer
    and filters): deciding it there or on ``/review/templates`` decides the version."""
    text = f"【{signature}】{body}"
    verdict = {"decision": "review", "score": 0.0, "kind": "template", "signature": f"【{signature}】",
               "reasons": [{"code": "template.version", "category": "template", "severity": "low",
                            "source": "filing", "action": "review", "start": 0, "end": len(signature) + 2,
                            "message": f"template {name!r} version {version}: check the new text"}]}
    review.submit(conn, tenant_id=tenant_id, source="template_version", source_ref=str(vid), text=text,
                  verdict=verdict)


def on_version_decision(conn: Connection, decision: Any) -> None:
    """Review handler (source ``template_version``): a decision in the main queue decides the version, in the
    decision's transaction. Decided on its own page meanwhile: nothing to do."""
    v = conn.execute(select(template_versions).where(template_versions.c.id == int(decision.source_ref))).first()
    if v is None or v.status != "pending":
        return
    if not decision.approved and not (decision.reason or "").strip():
        raise InputError("a rejection needs a reason for the customer", where="reason", code="template.reason")
    reviewer = f"user:{decision.deciders[-1]}" if decision.deciders else "system:review"
    _record(conn, v, approve=decision.approved, reason=(decision.reason or "").strip(), reviewer=reviewer)
