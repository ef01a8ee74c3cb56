"""Batches: create and cancel; the rest of a batch's life is in its own modules.

``_lifecycle`` (states and transitions), ``_submit`` (materialize, screen once per content), ``_decisions``
(review decisions on contents), ``_budget``, ``_reading`` (the batch, its recipients, reports), and
``_release`` (the release worker: caps, quiet hours, opt-outs, hand-over to the gateways).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from smsguard import audit, filing
from smsguard.core import ConflictError, NotFoundError

from ._common import BatchError, Context, now
from ._lifecycle import CANCELLABLE, _load, _transition, money
from ._optouts import sender_code
from ._reading import get_batch
from ._submit import submit_batch
from ._tables import batches, budgets, contact_lists, recipients
from ._templates import KINDS, Template, usable_template

# -- creating ----------------------------------------------------------------------------------------------


def create_batch(
    ctx: Context,
    tenant_id: int,
    *,
    name: str = "",
    template_id: int | None = None,
    list_id: int | None = None,
    content: str | None = None,
    numbers: Iterable[str] | None = None,
    kind: str | None = None,
    signature: str | None = None,
    schedule_at: datetime | None = None,
    draft: bool = False,
    actor: str | None = None,
    variables: Mapping[str, str] | None = None,
    guarded: bool = False,
    on_created: Callable[[Connection, dict[str, Any]], None] | None = None,
    texts: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Create a batch (template + contact list, template + ``variables`` + numbers, or content + numbers) and,
    unless ``draft``, submit it. ``on_created(conn, {"id", "kind", "signature", "template_id"})`` runs in the
    transaction that creates the batch (what the caller makes with it, and an idempotency key, commit with it).

    A template + numbers batch (the vendor-compatible sends: one set of values for every number) renders the
    template once; its text is stored as the batch's content, and the variable values are screened as such
    (``variable.link`` / ``variable.contact``) because the spans are found again from the template.

    ``texts`` (one per number, with ``signature``) instead of ``content``: each number has its own text, as
    customers' CMPP/SMPP SUBMITs grouped into one batch; the batch itself then stores no content."""
    actor = actor or ctx.actor
    if texts is not None:
        if content is not None or template_id is not None or not signature or not texts:
            raise BatchError(
                "texts (one per number) come with a signature and no content or template",
                where="$.texts",
                code="batch.source",
            )
        if any("${" in t or not t.strip() for t in texts):
            raise BatchError("texts must be non-empty and take no ${variables}", where="$.texts", code="batch.content")
        content = texts[0]  # validated as a content batch's (signature, kind); not stored
    if (template_id is None) == (content is None):
        raise BatchError(
            "give either template_id (with list_id) or content (with numbers)", where="$", code="batch.source"
        )
    if schedule_at is not None and schedule_at.tzinfo is None:
        raise BatchError(
            "schedule_at needs a time zone (e.g. 2026-11-25T09:00:00+08:00)",
            where="$.schedule_at",
            code="batch.schedule_at",
        )
    with ctx.db.connect() as conn:
        if template_id is not None:
            if list_id is None and numbers is None:
                raise BatchError("a template batch needs list_id (or numbers)", where="$.list_id", code="batch.source")
            tpl = usable_template(conn, tenant_id, template_id)
        if template_id is not None and list_id is None:
            compiled = Template.compile(tpl.signature, tpl.body)
            values = dict(variables or {})
            missing = [v for v in compiled.variables if v not in values]
            if missing:
                raise BatchError(
                    f"no value for variable(s) {', '.join(missing)}", where="$.variables", code="batch.variables"
                )
            kind, signature = tpl.kind, tpl.signature
            text = compiled.render([str(values[v]) for v in compiled.variables])
        elif template_id is not None:
            lst = conn.execute(
                select(contact_lists).where(contact_lists.c.id == list_id, contact_lists.c.tenant_id == tenant_id)
            ).one_or_none()
            if lst is None:
                raise NotFoundError(f"no contact list {list_id}", where="$.list_id", code="contacts.not_found")
            if lst.status != "ready":
                raise ConflictError(
                    f"contact list {list_id} is {lst.status}", where="$.list_id", code="contacts.not_ready"
                )
            missing = [v for v in json.loads(tpl.variables) if v not in json.loads(lst.columns)]
            if missing:
                raise BatchError(
                    f"the contact list has no column for variable(s) {', '.join(missing)}",
                    where="$.list_id",
                    code="batch.variables",
                )
            kind, signature, text = tpl.kind, tpl.signature, None
        else:
            if numbers is None or list_id is not None:
                raise BatchError("a content batch takes numbers, not list_id", where="$.numbers", code="batch.source")
            kind = kind or "notification"
            if kind not in KINDS:
                raise BatchError(f"kind must be one of {', '.join(KINDS)}", where="$.kind", code="batch.kind")
            assert content is not None
            if not content.strip():
                raise BatchError("content must not be empty", where="$.content", code="batch.content")
            if not signature:
                signature = content.strip()[1:].split("】", 1)[0] if content.strip().startswith("【") else ""
            if not signature:
                raise BatchError(
                    "give signature, or start content with 【signature】", where="$.signature", code="batch.signature"
                )
            signature = signature.strip("【】")
            p = ctx.policy.screening.signature
            if not p.min_len <= len(signature) <= p.max_len:
                raise BatchError(
                    f"signature must be {p.min_len}-{p.max_len} characters", where="$.signature", code="batch.signature"
                )
            text = Template.compile(signature, content).parts[0] if "${" not in content else None
            if text is None:
                raise BatchError(
                    "content batches take no ${variables}; use a template and a contact list",
                    where="$.content",
                    code="batch.content",
                )
        filing.require_approved(conn, tenant_id, signature)  # signature.not_approved: a 403 at the API
    sender = sender_code(ctx, tenant_id, signature)
    schedule_at = schedule_at.astimezone(UTC) if schedule_at is not None else None  # SQLite keeps no offset
    at = now()
    with ctx.db.begin() as conn:
        batch_id = conn.execute(
            insert(batches)
            .values(
                tenant_id=tenant_id,
                name=(name or f"batch {at:%Y-%m-%d %H:%M}")[:100],
                kind=kind,
                signature=signature,
                sender=sender,
                template_id=template_id,
                list_id=list_id,
                content=text if texts is None else None,
                guarded=guarded,
                state="draft",
                schedule_at=schedule_at,
                total=0,
                estimate_micros=0,
                reserved_micros=0,
                cursor=0,
                created_at=at,
                updated_at=at,
            )
            .returning(batches.c.id)
        ).scalar_one()
        audit.append(
            conn,
            event_type="batch.draft",
            actor=actor,
            tenant_id=tenant_id,
            subject=f"batch:{batch_id}",
            payload={
                "batch_id": batch_id,
                "kind": kind,
                "signature": signature,
                "template_id": template_id,
                "list_id": list_id,
                "schedule_at": schedule_at.isoformat() if schedule_at else None,
            },
        )
        if on_created is not None:
            on_created(conn, {"id": batch_id, "kind": kind, "signature": signature, "template_id": template_id})
    if not draft:
        submit_batch(ctx, tenant_id, batch_id, numbers=numbers, actor=actor, texts=texts)
    return get_batch(ctx, tenant_id, batch_id)


def cancel_batch(
    ctx: Context, tenant_id: int, batch_id: int, *, actor: str | None = None, reason: str = "cancelled by the customer"
) -> dict[str, Any]:
    """Cancel a batch at any point before its recipients are handed over: before release, or while the release
    waits (quiet hours: every recipient ``deferred``). Recipients not handed over become ``cancelled`` and what
    was reserved for them is refunded. A batch a release worker holds right now is a ConflictError: what it is
    handing over cannot be recalled, and its lease ends within seconds."""
    from ._release import handed_cost

    actor = actor or ctx.actor
    with ctx.db.begin() as conn:
        batch = _load(conn, tenant_id, batch_id)
        refund = 0
        if batch.state == "releasing":
            # no lease: the worker stopped cleanly (deferred), so no chunk is between Redis and SQL
            if not _transition(
                conn, batch, "cancelled", actor, frm=("releasing",), reason=reason, when=batches.c.lease_owner.is_(None)
            ):
                raise ConflictError(
                    f"batch {batch_id} is being handed over to the carriers right now; what is handed over cannot "
                    "be recalled: try again in a few seconds to cancel the rest",
                    where="path batch_id",
                    code="batch.handing_over",
                )
            refund = max(0, batch.reserved_micros - handed_cost(conn, ctx, batch_id))
            if refund:
                conn.execute(
                    update(budgets)
                    .where(budgets.c.tenant_id == batch.tenant_id)
                    .values(spent_micros=budgets.c.spent_micros - refund, updated_at=now())
                )
                conn.execute(
                    update(batches)
                    .where(batches.c.id == batch_id)
                    .values(reserved_micros=batches.c.reserved_micros - refund)
                )
        elif not _transition(conn, batch, "cancelled", actor, frm=CANCELLABLE, reason=reason):
            raise ConflictError(
                f"batch {batch_id} is {batch.state}: everything in it was handed over, nothing is left to cancel",
                where="path batch_id",
                code="batch.state",
            )
        n = conn.execute(
            update(recipients)
            .where(recipients.c.batch_id == batch_id, recipients.c.status.in_(("queued", "deferred")))
            .values(status="cancelled", detail=reason[:500])
        ).rowcount
        audit.append(
            conn,
            event_type="batch.recipients_cancelled",
            actor=actor,
            tenant_id=batch.tenant_id,
            subject=f"batch:{batch_id}",
            payload={"batch_id": batch_id, "from": batch.state, "recipients": n, "refunded": money(refund)},
        )
    return get_batch(ctx, tenant_id, batch_id)
