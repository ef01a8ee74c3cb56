"""Single messages (issue 17, point 1): ``POST /v1/messages`` as a one-recipient batch.

``send_message`` creates the batch as a draft (``batches.create_batch``), names it in ``messages`` (with its
``message.created`` audit event, in one transaction) and then submits it (``batches.submit_batch``). So a
single message goes through exactly what a batch goes through: screening of its rendered text (template
variables screened as variables), review when the verdict says so, and at release opt-outs, frequency caps,
quiet hours, the budget and the channels; the delivery report lands on its recipient row. Every state change
is the batch's own audit event (``batch.*``, ``release``) plus ``message.created`` here.

Over budget, the draft batch is cancelled (audited) and ``budget.exceeded`` raised: nothing is left behind
that could still be sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from smsguard import audit, batches, billing
from smsguard.core import InputError, NotFoundError
from smsguard.phones import InvalidPhone, Phone, parse_phone

from ._tables import messages

MAX_LIST = 1000


class MessageError(InputError):
    code = "message.invalid"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _iso(dt: datetime | None) -> str | None:
    dt = _aware(dt)
    return dt.isoformat() if dt else None


def phone_of(raw: str, where: str = "$.to") -> Phone:
    """``parse_phone``, its error naming the field the client sent."""
    try:
        return parse_phone(raw)
    except InvalidPhone as e:
        e.where = where
        raise


def send_message(
    ctx: batches.Context,
    tenant_id: int,
    *,
    to: str,
    template_id: int | None = None,
    text: str | None = None,
    variables: Mapping[str, str] | None = None,
    signature: str | None = None,
    kind: str | None = None,
    schedule_at: datetime | None = None,
    origin: str = "api",
    actor: str | None = None,
    guarded: bool = False,
    bind: Callable[[Connection, str], None] | None = None,
    on_created: Callable[[Connection, int], None] | None = None,
) -> dict[str, Any]:
    """Send one SMS to ``to`` (a template and its ``variables``, or a ``text``); returns ``get_message``.

    The batch and the message row are made in one transaction; ``on_created(conn, message_id)`` (the caller's own
    rows) and ``bind(conn, "message:<id>")`` (an Idempotency-Key, api/_idempotency.py) run in it too, so a crash
    leaves all or nothing; ``resume_message`` finishes what a crash interrupted."""
    actor = actor or ctx.actor
    phone = phone_of(to)
    if (template_id is None) == (text is None):
        raise MessageError("give either template_id (with variables) or text", where="$", code="message.source")
    if text is not None and variables:
        raise MessageError("variables go with template_id; text is sent as it is", where="$.variables",
                           code="message.variables")
    if template_id is not None:
        try:
            tpl = batches.get_template(ctx, tenant_id, template_id)
        except NotFoundError as e:
            e.where = "$.template_id"
            raise
        if kind is not None and kind != tpl["kind"]:
            raise MessageError(f"template {template_id} is a {tpl['kind']} template, not {kind}", where="$.kind",
                               code="message.kind")
        unknown = sorted(set(variables or {}) - set(tpl["variables"]))
        if unknown:
            raise MessageError(f"template {template_id} has no variable(s) {', '.join(unknown)}",
                               where="$.variables", code="message.variables")
    made: list[int] = []

    def created(conn: Connection, b: dict[str, Any]) -> None:
        message_id = _record(conn, tenant_id, b, phone, ctx.vault.hash(phone.e164), origin, actor)
        if on_created is not None:
            on_created(conn, message_id)
        if bind is not None:
            bind(conn, f"message:{message_id}")
        made.append(message_id)

    b = batches.create_batch(
        ctx, tenant_id, name=f"message to {phone.masked}", template_id=template_id, content=text,
        numbers=[phone.e164], variables=variables if template_id is not None else None, kind=kind,
        signature=signature, schedule_at=schedule_at, draft=True, actor=actor, guarded=guarded, on_created=created,
    )
    _submit(ctx, tenant_id, b["id"], phone, actor)
    return get_message(ctx, tenant_id, made[0])


def _submit(ctx: batches.Context, tenant_id: int, batch_id: int, phone: Phone, actor: str) -> None:
    try:
        batches.submit_batch(ctx, tenant_id, batch_id, numbers=[phone.e164], actor=actor)
    except (batches.BudgetExceeded, billing.InsufficientBalance) as e:  # nothing held: the hold was refused
        batches.cancel_batch(ctx, tenant_id, batch_id, actor=actor, reason=e.message[:500])
        raise


def resume_message(ctx: batches.Context, tenant_id: int, message_id: int, *, to: str,
                   actor: str | None = None) -> dict[str, Any]:
    """Finish a ``send_message`` that crashed after its message was made: a batch still a draft (or left in
    screening by the crash) is submitted with ``to`` (the retried request's number); returns ``get_message``."""
    actor = actor or ctx.actor
    batch_id = message_batch(ctx, tenant_id, message_id)
    if batches.get_batch(ctx, tenant_id, batch_id)["state"] in ("draft", "screening"):
        _submit(ctx, tenant_id, batch_id, phone_of(to), actor)
    return get_message(ctx, tenant_id, message_id)


def _record(conn: Connection, tenant_id: int, b: dict[str, Any], phone: Phone, phone_hash: str, origin: str,
            actor: str) -> int:
    message_id = conn.execute(
        insert(messages).values(
            tenant_id=tenant_id, batch_id=b["id"], phone_hash=phone_hash, phone_masked=phone.masked,
            kind=b["kind"], signature=b["signature"], template_id=b["template_id"], origin=origin,
            created_at=_now(),
        ).returning(messages.c.id)
    ).scalar_one()
    audit.append(
        conn, event_type="message.created", actor=actor, tenant_id=tenant_id, subject=f"message:{message_id}",
        payload={"message_id": message_id, "batch_id": b["id"], "kind": b["kind"], "signature": b["signature"],
                 "template_id": b["template_id"], "origin": origin, "phone": phone.masked,
                 "phone_subject": f"phone:{phone_hash}"},
    )
    return message_id


def _query():
    view = batches.message_view().subquery()
    return view, select(messages, *[c for c in view.c if c.name not in ("batch_id", "tenant_id")]).join(
        view, view.c.batch_id == messages.c.batch_id
    )


def get_message(ctx: batches.Context, tenant_id: int, message_id: int) -> dict[str, Any]:
    """One message of ``tenant_id`` (another tenant's id is ``message.not_found``)."""
    _, q = _query()
    with ctx.db.connect() as conn:
        row = conn.execute(q.where(messages.c.id == message_id, messages.c.tenant_id == tenant_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no message {message_id}", where="path message_id", code="message.not_found")
    return _view(ctx, row, full=True)


def list_messages(
    ctx: batches.Context,
    tenant_id: int,
    *,
    phone: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    state: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """The tenant's messages, newest first: by number (found by its keyed hash), ``since`` ≤ created < ``until``
    and state; ``before`` (an id) pages on, ``next_before`` is the cursor of the next page."""
    if state is not None and state not in batches.MESSAGE_STATES:
        raise MessageError(f"state must be one of {', '.join(batches.MESSAGE_STATES)}", where="query state",
                           code="message.state")
    view, q = _query()
    q = q.where(messages.c.tenant_id == tenant_id)
    if phone is not None:
        q = q.where(messages.c.phone_hash == ctx.vault.hash(phone_of(phone, "query phone").e164))
    if since is not None:
        q = q.where(messages.c.created_at >= since.astimezone(UTC))
    if until is not None:
        q = q.where(messages.c.created_at < until.astimezone(UTC))
    if state is not None:
        q = q.where(view.c.state == state)
    if before is not None:
        q = q.where(messages.c.id < before)
    limit = min(max(limit, 1), MAX_LIST)
    with ctx.db.connect() as conn:
        rows = conn.execute(q.order_by(messages.c.id.desc()).limit(limit + 1)).all()
    page = [_view(ctx, r, full=False) for r in rows[:limit]]
    return {"messages": page, "next_before": page[-1]["id"] if len(rows) > limit else None}


def _view(ctx: batches.Context, r: Any, *, full: bool) -> dict[str, Any]:
    verdict = json.loads(r.verdict) if r.verdict else None
    out: dict[str, Any] = {
        "id": r.id,
        "state": r.state,
        "to": r.phone_masked,
        "kind": r.kind,
        "signature": r.signature,
        "template_id": r.template_id,
        "origin": r.origin,
        "batch_id": r.batch_id,
        "created_at": _iso(r.created_at),
        "schedule_at": _iso(r.schedule_at),
        "decision": r.decision,
        "review": r.review,
        "detail": r.detail or r.batch_reason,
        "carrier": r.carrier,
        "delivery": {"gateway": r.gateway, "carrier_status": r.carrier_code, "submitted_at": _iso(r.submitted_at),
                     "final_at": _iso(r.final_at)},
        "segments": r.segments,
        "cost": f"{int(r.cost_micros or 0) / 1_000_000:.4f}" if r.decision not in (None, "block") else "0.0000",
        "currency": ctx.policy.prices.currency,
    }
    if full:
        out["text"] = r.text if r.origin != "verify" else None  # a code is the end user's, not the tenant's
        out["reasons"] = [
            {k: reason.get(k) for k in ("code", "category", "severity", "source", "action", "message", "term",
                                        "start", "end")}
            for reason in (verdict or {}).get("reasons", [])
        ]
        out["reason"] = r.reason
    return out


def message_batch(ctx: batches.Context, tenant_id: int, message_id: int) -> int:
    """The batch id of a message (``message.not_found`` for another tenant's)."""
    with ctx.db.connect() as conn:
        bid = conn.execute(select(messages.c.batch_id).where(messages.c.id == message_id,
                                                            messages.c.tenant_id == tenant_id)).scalar_one_or_none()
    if bid is None:
        raise NotFoundError(f"no message {message_id}", where="path message_id", code="message.not_found")
    return bid


def message_text(ctx: batches.Context, tenant_id: int, message_id: int) -> tuple[int, str]:
    """A message's batch id and its text as stored (a verification code's digits until they are redacted)."""
    _, q = _query()
    with ctx.db.connect() as conn:
        row = conn.execute(q.where(messages.c.id == message_id, messages.c.tenant_id == tenant_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no message {message_id}", where="path message_id", code="message.not_found")
    return row.batch_id, row.text or ""
