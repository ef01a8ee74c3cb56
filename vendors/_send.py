"""What both vendor APIs do, on smsguard's own objects: a send is a template + numbers batch (so screening,
review, opt-outs, caps, quiet hours, budget and channels apply as to any batch), and the status pulls read
its recipients and the tenant's MO replies.

Errors are ``VendorError`` with a vendor-neutral ``kind``; ``_tencent`` and ``_aliyun`` name them in their
vendor's codes. A send is recorded (``vendor_sends`` + audit ``vendor.send``) in the same transaction that
names the batch, before the batch is submitted, so a status pull finds every batch it created.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, select, update

from smsguard import audit, batches, billing
from smsguard.core import SmsguardError

from ._credentials import Credential
from ._tables import batch_contents, credentials, cursors, inbound_messages, pulled, recipients, sends, templates
from ._tables import batches as batch_table

CHINA = ZoneInfo("Asia/Shanghai")  # both vendors answer times in Beijing time
FINAL = ("delivered", "failed", "expired", "unknown", "rejected", "opted_out", "capped", "cancelled")
"""Recipient states a status pull reports: the carrier's answer, or smsguard's reason for not sending."""
MAX_VALUE = 100  # characters per template parameter value
BLOCKED_AT_SEND = "blocked by screening"  # the recipients' detail batches gives a content screening blocked


class VendorError(SmsguardError):
    """``kind``: template | signature | params | param_length | phone | count | missing | invalid | blocked |
    budget | app."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, code=f"vendor.{kind}")
        self.kind = kind


@dataclasses.dataclass(frozen=True, slots=True)
class NumberResult:
    raw: str
    serial: str
    status: str  # the recipient's status right after submitting: queued, invalid, rejected, ...
    detail: str | None
    fee: int  # segments billed when sent (0 for a number that will not be)


@dataclasses.dataclass(frozen=True, slots=True)
class SendResult:
    batch_id: int
    biz_id: str
    state: str
    numbers: list[NumberResult]


def _no_nul(*values: Any) -> None:
    for v in values:
        items = v.items() if isinstance(v, Mapping) else (v if isinstance(v, list | tuple) else [v])
        if any("\x00" in (f"{x[0]}{x[1]}" if isinstance(x, tuple) else str(x)) for x in items if x is not None):
            raise VendorError("invalid", "parameters must not contain NUL (U+0000)")


def send(
    ctx: batches.Context,
    cred: Credential,
    *,
    template_ref: str,
    template_id: int | None,
    sign_name: str | None,
    numbers: Sequence[str],
    values: Sequence[str] | Mapping[str, str],
    session_context: str | None = None,
    biz_id: str | None = None,
    max_numbers: int,
    all_numbers_valid: bool = False,
) -> SendResult:
    """Send ``template_id`` rendered with ``values`` (positional, or by name) to ``numbers`` as one batch."""
    _no_nul(template_ref, sign_name, list(numbers), values, session_context)
    if not numbers:
        raise VendorError("missing", "no phone number given")
    if len(numbers) > max_numbers:
        raise VendorError("count", f"at most {max_numbers} phone numbers per request, got {len(numbers)}")
    if all_numbers_valid:
        for raw in numbers:
            try:
                batches.parse_phone(raw)
            except batches.InvalidPhone as e:
                raise VendorError("phone", f"{batches.mask(raw)}: {e.message}") from None
    if template_id is None or not 1 <= template_id <= 2**31 - 1:
        raise VendorError("template", f"template {template_ref!r} does not exist")
    with ctx.db.connect() as conn:
        tpl = conn.execute(
            select(templates).where(templates.c.id == template_id, templates.c.tenant_id == cred.tenant_id)
        ).one_or_none()
    if tpl is None:
        raise VendorError("template", f"template {template_ref!r} does not exist")
    if tpl.status != "approved":
        why = f" ({tpl.reason})" if tpl.reason else ""
        raise VendorError("template", f"template {template_ref!r} is {tpl.status}, not approved{why}")
    if sign_name is not None and sign_name.strip().strip("【】") != tpl.signature:
        raise VendorError("signature", f"signature {sign_name!r} is not the one approved for template "
                          f"{template_ref!r}")
    names = batches.Template.compile(tpl.signature, tpl.body).variables
    if isinstance(values, Mapping):
        missing = [n for n in names if n not in values]
        if missing:
            raise VendorError("params", f"no value for template variable(s) {', '.join(missing)}")
        variables = {n: values[n] for n in names}
    else:
        if len(values) != len(names):
            raise VendorError("params", f"template {template_ref!r} takes {len(names)} parameter(s), got {len(values)}")
        variables = dict(zip(names, values, strict=True))
    if any(not isinstance(v, str) for v in variables.values()):
        raise VendorError("params", "template parameters must be strings")
    if any(len(v) > MAX_VALUE for v in variables.values()):  # both vendors bound a value (35 / 12 characters)
        raise VendorError("param_length", f"a template parameter is at most {MAX_VALUE} characters")
    actor = f"vendor:{cred.access_id}"
    try:
        batch = batches.create_batch(ctx, cred.tenant_id, name=f"{cred.vendor} send", template_id=template_id,
                                     numbers=list(numbers), variables=variables, draft=True, actor=actor)
    except SmsguardError as e:
        raise VendorError("params" if e.code == "batch.variables" else "invalid", e.message) from None
    bid = batch["id"]
    biz = biz_id or str(bid)
    with ctx.db.begin() as conn:
        conn.execute(insert(sends).values(batch_id=bid, credential_id=cred.id, tenant_id=cred.tenant_id, biz_id=biz,
                                          template_ref=template_ref[:64], session_context=session_context,
                                          created_at=datetime.now(UTC)))
        audit.append(conn, event_type="vendor.send", actor=actor, tenant_id=cred.tenant_id, subject=f"batch:{bid}",
                     payload={"vendor": cred.vendor, "batch_id": bid, "biz_id": biz, "template": template_ref[:64],
                              "numbers": len(numbers)})
    try:
        batch = batches.submit_batch(ctx, cred.tenant_id, bid, numbers=list(numbers), actor=actor)
    except (batches.BudgetExceeded, billing.InsufficientBalance) as e:  # the vendors' "balance not enough"
        batches.cancel_batch(ctx, cred.tenant_id, bid, actor=actor, reason=e.message[:500])
        raise VendorError("budget", e.message) from None
    except SmsguardError as e:
        batches.cancel_batch(ctx, cred.tenant_id, bid, actor=actor, reason=e.message[:500])
        raise VendorError("invalid", e.message) from None
    blocked = [c for c in batch["contents"] if c["decision"] == "block" or c["review"] == "rejected"]
    if blocked:
        raise VendorError("blocked", f"smsguard screening blocked the content (batch {bid}): " + _reasons(ctx, bid))
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(recipients.c.seq, recipients.c.status, recipients.c.detail, batch_contents.c.segments)
            .join(batch_contents, and_(batch_contents.c.batch_id == recipients.c.batch_id,
                                       batch_contents.c.content_id == recipients.c.content_id))
            .where(recipients.c.batch_id == bid).order_by(recipients.c.seq)
        ).all()
    by_seq = {r.seq: r for r in rows}
    results = []
    for seq, raw in enumerate(numbers, start=1):
        r = by_seq.get(seq)
        status = r.status if r is not None else "invalid"
        fee = r.segments if r is not None and status in ("queued", "deferred", "submitted", "delivered") else 0
        results.append(NumberResult(raw, batches.message_id(bid, seq), status, r.detail if r else None, fee))
    return SendResult(bid, biz, batch["state"], results)


def _reasons(ctx: batches.Context, batch_id: int) -> str:
    """smsguard's reasons for a blocked content: code, category and the term found, as the verdict has them."""
    with ctx.db.connect() as conn:
        row = conn.execute(select(batch_contents.c.verdict, batch_contents.c.reason)
                           .where(batch_contents.c.batch_id == batch_id)).first()
    if row is None:
        return "blocked"
    try:
        verdict = json.loads(row.verdict)
        parts = [(f"{r['code']}" + (f" ({r['term']})" if r.get("term") else "")
                  + (f": {r['message']}" if r.get("message") else ""))
                 for r in verdict.get("reasons", []) if r.get("action") == "block"]
    except (ValueError, TypeError, AttributeError, KeyError):
        parts = []
    return "; ".join(parts)[:1000] or (row.reason or "blocked")


# -- status pulls ----------------------------------------------------------------------------------------


def china_time(dt: datetime | None) -> str:
    if dt is None:
        return ""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
    return dt.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def unix(dt: datetime | None) -> int:
    if dt is None:
        return 0
    return int((dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt).timestamp())


def pull_send_status(ctx: batches.Context, cred: Credential, limit: int) -> list[Any]:
    """Final states of this credential's messages not pulled before, oldest first; each is answered once
    (marked pulled in the same transaction)."""
    already = select(pulled.c.seq).where(pulled.c.credential_id == cred.id, pulled.c.batch_id == recipients.c.batch_id,
                                         pulled.c.seq == recipients.c.seq)
    with ctx.db.begin() as conn:
        rows = conn.execute(
            select(recipients.c.batch_id, recipients.c.seq, recipients.c.phone_masked, recipients.c.status,
                   recipients.c.detail, recipients.c.carrier_code, recipients.c.final_at, sends.c.session_context)
            .join(sends, sends.c.batch_id == recipients.c.batch_id)
            .where(sends.c.credential_id == cred.id, recipients.c.status.in_(FINAL), ~already.exists(),
                   # a content blocked at send time was answered with an error then, not with serial numbers
                   recipients.c.detail.is_(None) | (recipients.c.detail != BLOCKED_AT_SEND))
            .order_by(recipients.c.final_at, recipients.c.batch_id, recipients.c.seq)
            .limit(limit)
        ).all()
        if rows:
            at = datetime.now(UTC)
            conn.execute(insert(pulled), [{"credential_id": cred.id, "batch_id": r.batch_id, "seq": r.seq, "at": at}
                                          for r in rows])
            audit.append(conn, event_type="vendor.status_pulled", actor=f"vendor:{cred.access_id}",
                         tenant_id=cred.tenant_id, subject=f"vendor_credential:{cred.id}",
                         payload={"reports": len(rows), "first": batches.message_id(rows[0].batch_id, rows[0].seq)})
    return list(rows)


def pull_replies(ctx: batches.Context, cred: Credential, limit: int) -> list[Any]:
    """The tenant's MO replies after this credential's cursor, oldest first; the cursor moves past them in the
    same transaction."""
    with ctx.db.begin() as conn:
        last = conn.execute(select(cursors.c.last_id).where(cursors.c.credential_id == cred.id)).scalar_one_or_none()
        rows = conn.execute(
            select(inbound_messages).where(inbound_messages.c.tenant_id == cred.tenant_id,
                                           inbound_messages.c.id > (last or 0))
            .order_by(inbound_messages.c.id).limit(limit)
        ).all()
        if rows:
            at = datetime.now(UTC)
            if last is None:
                conn.execute(insert(cursors).values(credential_id=cred.id, last_id=rows[-1].id, updated_at=at))
            else:
                conn.execute(update(cursors).where(cursors.c.credential_id == cred.id)
                             .values(last_id=rows[-1].id, updated_at=at))
            audit.append(conn, event_type="vendor.replies_pulled", actor=f"vendor:{cred.access_id}",
                         tenant_id=cred.tenant_id, subject=f"vendor_credential:{cred.id}",
                         payload={"replies": len(rows), "last_id": rows[-1].id})
    return list(rows)


def query_details(ctx: batches.Context, cred: Credential, *, phone: str, day: date, biz_id: str | None,
                  page: int, size: int) -> tuple[int, list[Any]]:
    """This tenant's messages sent through this vendor's endpoint to ``phone`` on ``day`` (Beijing time):
    (total, the page's rows)."""
    h = ctx.vault.hash(batches.parse_phone(phone).e164)
    start = datetime.combine(day, time(), CHINA).astimezone(UTC)
    where = [sends.c.tenant_id == cred.tenant_id, credentials.c.vendor == cred.vendor, recipients.c.phone_hash == h,
             batch_table.c.created_at >= start, batch_table.c.created_at < start + timedelta(days=1)]
    if biz_id:
        where.append(sends.c.biz_id == biz_id)
    base = (select(recipients.c.batch_id, recipients.c.seq, recipients.c.phone_masked, recipients.c.status,
                   recipients.c.detail, recipients.c.carrier_code, recipients.c.submitted_at, recipients.c.final_at,
                   batch_table.c.content, batch_table.c.created_at, sends.c.template_ref, sends.c.session_context)
            .join(sends, sends.c.batch_id == recipients.c.batch_id)
            .join(batch_table, batch_table.c.id == recipients.c.batch_id)
            .join(credentials, credentials.c.id == sends.c.credential_id)
            .where(*where))
    with ctx.db.connect() as conn:
        total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
        rows = conn.execute(base.order_by(recipients.c.batch_id, recipients.c.seq)
                            .offset((page - 1) * size).limit(size)).all()
    return total, list(rows)
