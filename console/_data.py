"""What the console's pages read and compute, always for ONE tenant: lists of templates, contact lists and
batches, a batch's progress (counts, delivery over time, failures by carrier code), opt-out search, and the
compose preview (screening verdict, length, segments, recipients, cost, quiet hours).

Writes go through ``batches``' public functions (``create_template``, ``import_contacts``, ``create_batch``);
this module only reads ``batches``' tables, and every query carries ``tenant_id`` so one tenant's user can
never read another tenant's rows (the tests try).

The compose preview is the server-side truth for the live counter: length and segments come from the engine's
verdict (70 / 67 per segment for UCS-2, 160 / 153 for GSM-7, policy ``length``), prices from policy
``prices``, quiet hours from ``batches.in_quiet_hours``. The browser only pre-computes the character count.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import Connection, Integer, and_, cast, func, select

from smsguard import batches
from smsguard.batches._tables import batches as batches_t
from smsguard.batches._tables import contact_lists, contacts, optouts, recipients, templates
from smsguard.core import NotFoundError, SmsguardError
from smsguard.engine import Message
from smsguard.i18n import N_, gettext

from ._labels import batch_state, kind_label, record_state, template_status

CARRIERS = ("mobile", "unicom", "telecom", "broadnet", "virtual", "other")
CARRIER_NAMES = {"mobile": N_("China Mobile"), "unicom": N_("China Unicom"), "telecom": N_("China Telecom"),
                 "broadnet": N_("China Broadnet"), "virtual": N_("virtual operator"), "other": N_("other")}


class _CarrierLabels(dict):
    """A carrier's name in the request's language (read when a page or its JSON is made)."""

    def get(self, key: Any, default: Any = None) -> Any:
        return gettext(CARRIER_NAMES[key]) if key in CARRIER_NAMES else default


CARRIER_LABELS = _CarrierLabels()
DELIVERY_FINAL = ("delivered", "failed", "expired", "unknown")
NOT_SENT = ("opted_out", "invalid", "capped", "refused", "rejected", "cancelled")
MAX_ADHOC = 10_000
"""Ad-hoc numbers typed or pasted into the compose form; larger sends belong in a contact list."""
PREVIEW_SAMPLE = 200
"""Contacts rendered for a template + list preview: enough to see the variables' effect on length."""


class ComposeError(SmsguardError):
    code = "console.compose"


# -- tenant-scoped lists ----------------------------------------------------------------------------------


def _aware(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()


def local(dt: datetime | str | None, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time as the tenant's local time."""
    if dt is None:
        return "–"
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.astimezone(ZoneInfo(tz)).strftime(fmt)


def state_label(b: Mapping[str, Any], tz: str) -> str:
    """What a batch's state means to the customer: ``deferred until 08:00 (quiet hours)`` rather than a bare
    ``scheduled`` or ``releasing`` while quiet hours hold every recipient."""
    hold = b.get("hold")
    if hold and hold.get("reason") == "quiet_hours":
        until = datetime.fromisoformat(hold["until"]).astimezone(ZoneInfo(tz))
        fmt = "%H:%M" if until.date() == datetime.now(ZoneInfo(tz)).date() else "%m-%d %H:%M"
        return gettext("deferred until %(at)s (quiet hours)", at=until.strftime(fmt))
    return batch_state(b["state"])


def default_batch_name(tz: str, at: datetime | None = None) -> str:
    """A new batch's name when none is given: the time in the tenant's zone, as every page shows it."""
    return gettext("batch %(at)s", at=local(at or datetime.now(UTC), tz))


def list_templates(db: Any, tenant_id: int, *, approved_only: bool = False) -> list[dict[str, Any]]:
    q = select(templates).where(templates.c.tenant_id == tenant_id).order_by(templates.c.id.desc()).limit(500)
    if approved_only:
        q = q.where(templates.c.status == "approved")
    with db.connect() as conn:
        rows = conn.execute(q).all()
    return [{"id": r.id, "name": r.name, "kind": r.kind, "signature": r.signature, "body": r.body,
             "variables": json.loads(r.variables), "status": r.status, "reason": r.reason,
             "created_at": r.created_at} for r in rows]


def list_contact_lists(db: Any, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's lists with their import counts and how many of their numbers are opted out (this tenant,
    any of its signatures, or platform-wide): those will be skipped at release."""
    with db.connect() as conn:
        rows = conn.execute(
            select(contact_lists).where(contact_lists.c.tenant_id == tenant_id)
            .order_by(contact_lists.c.id.desc()).limit(500)
        ).all()
        ids = [r.id for r in rows]
        opted: dict[int, int] = {}
        if ids:
            opted = dict(conn.execute(
                select(contacts.c.list_id, func.count(func.distinct(contacts.c.phone_hash)))
                .join(optouts, and_(optouts.c.phone_hash == contacts.c.phone_hash, optouts.c.opted_out.is_(True),
                                    optouts.c.tenant_id.in_((0, tenant_id))))
                .where(contacts.c.list_id.in_(ids))
                .group_by(contacts.c.list_id)
            ).all())
    return [{"id": r.id, "name": r.name, "status": r.status, "encoding": r.encoding,
             "columns": json.loads(r.columns), "total": r.total, "valid": r.valid, "invalid": r.invalid,
             "duplicates": r.duplicates, "opted_out": opted.get(r.id, 0), "error": r.error,
             "created_at": r.created_at} for r in rows]


def list_batches(db: Any, tenant_id: int, limit: int = 200, *, policy: batches.PolicySections | None = None,
                 tz: str = "Asia/Shanghai") -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            select(batches_t).where(batches_t.c.tenant_id == tenant_id).order_by(batches_t.c.id.desc()).limit(limit)
        ).all()
        ids = [r.id for r in rows]
        counts: dict[int, dict[str, int]] = {}
        if ids:
            for bid, status, n in conn.execute(
                select(recipients.c.batch_id, recipients.c.status, func.count())
                .where(recipients.c.batch_id.in_(ids)).group_by(recipients.c.batch_id, recipients.c.status)
            ):
                counts.setdefault(bid, {})[status] = n
    out = []
    for r in rows:
        c = counts.get(r.id, {})
        hold = None
        if r.state == "releasing" and r.resume_at is not None and c.get("deferred"):
            hold = {"reason": "quiet_hours", "until": _iso(r.resume_at)}
        elif r.state in ("approved", "scheduled") and policy is not None:
            due = max(_aware(r.schedule_at) or datetime.now(UTC), datetime.now(UTC))
            resume = batches.in_quiet_hours(policy.batches.quiet_hours, r.kind, due)
            hold = {"reason": "quiet_hours", "until": _iso(resume)} if resume else None
        out.append({"id": r.id, "name": r.name, "state": r.state, "kind": r.kind, "signature": r.signature,
                    "label": state_label({"state": r.state, "hold": hold}, tz),
                    "total": r.total, "schedule_at": r.schedule_at, "created_at": r.created_at,
                    "delivered": c.get("delivered", 0), "failed": sum(c.get(s, 0) for s in ("failed", "expired")),
                    "counts": c})
    return out


# -- a batch's progress and report ------------------------------------------------------------------------


def _epoch(conn: Connection, column: Any) -> Any:
    """Whole seconds since 1970 of a stored time, in SQL (so a million recipients are bucketed by the database)."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), Integer)
    return cast(func.strftime("%s", column), Integer)  # SQLite keeps UTC text: '2026-11-25 09:01:20.123456'


def progress(ctx: batches.Context, tenant_id: int, batch_id: int, *, points: int = 60,
             tz: str = "Asia/Shanghai") -> dict[str, Any]:
    """Everything the batch page shows and refreshes: ``batches.get_batch`` (state, counts, estimate) plus the
    delivery timeline and failures by carrier code. Raises ``NotFoundError`` for another tenant's batch."""
    b = batches.get_batch(ctx, tenant_id, batch_id)
    counts: dict[str, int] = b["counts"]
    total = sum(counts.values())
    sendable = total - sum(counts.get(s, 0) for s in NOT_SENT)
    with ctx.db.connect() as conn:
        timeline = _timeline(conn, batch_id, points)
        failures = [
            {"status": s, "carrier_code": code or "–", "count": n}
            for s, code, n in conn.execute(
                select(recipients.c.status, recipients.c.carrier_code, func.count())
                .where(recipients.c.batch_id == batch_id,
                       recipients.c.status.in_(("failed", "expired", "unknown")))
                .group_by(recipients.c.status, recipients.c.carrier_code)
                .order_by(func.count().desc())
            )
        ]
        by_carrier = [
            {"carrier": c, "label": CARRIER_LABELS.get(c, c), "status": s, "count": n}
            for c, s, n in conn.execute(
                select(recipients.c.carrier, recipients.c.status, func.count())
                .where(recipients.c.batch_id == batch_id)
                .group_by(recipients.c.carrier, recipients.c.status)
            )
        ]
    delivered = counts.get("delivered", 0)
    finished = sum(counts.get(s, 0) for s in DELIVERY_FINAL)
    submitted = counts.get("submitted", 0) + finished
    b.update(
        total_recipients=total,
        sendable=sendable,
        submitted=submitted,
        finished=finished,
        delivered=delivered,
        delivery_rate=round(delivered / sendable, 4) if sendable else None,
        done_pct=round(100 * (finished + sum(counts.get(s, 0) for s in NOT_SENT)) / total, 1) if total else 0.0,
        timeline=timeline,
        failures=failures,
        by_carrier=by_carrier,
        final=_final(b, counts),
        label=state_label(b, tz),
        # the page's script redraws the counts: their states as the page names them (the request's language)
        state_labels={s: record_state(s) for s in {*counts, *(f["status"] for f in failures)}},
    )
    return b


def _final(b: Mapping[str, Any], counts: Mapping[str, int]) -> bool:
    """Nothing more will change: cancelled, or released (``done`` means every recipient was handed over) and
    every delivery report is in; reports still missing three days after release are not coming."""
    if b["state"] == "cancelled":
        return True
    if b["state"] != "done":
        return False
    if not any(counts.get(s, 0) for s in ("queued", "submitted", "deferred")):
        return True
    done_at = datetime.fromisoformat(b["done_at"]) if b.get("done_at") else None
    return done_at is not None and datetime.now(UTC) - done_at > timedelta(days=3)


def _timeline(conn: Connection, batch_id: int, points: int) -> dict[str, Any]:
    """Cumulative submitted / delivered / failed counts over time, in at most ``points`` buckets."""
    span = conn.execute(
        select(func.min(recipients.c.submitted_at), func.max(recipients.c.final_at),
               func.max(recipients.c.submitted_at)).where(recipients.c.batch_id == batch_id)
    ).one()
    first = span[0]
    last = max((t for t in (span[1], span[2]) if t is not None), default=None)
    if first is None or last is None:
        return {"start": None, "width": 1, "points": []}
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    t0 = int(first.timestamp())
    width = max(1, math.ceil((last.timestamp() - t0 + 1) / points))
    n = int((last.timestamp() - t0) // width) + 1
    sub = [0] * n
    dlv = [0] * n
    fail = [0] * n
    for column, status_filter, target in (
        (recipients.c.submitted_at, None, sub),
        (recipients.c.final_at, ("delivered",), dlv),
        (recipients.c.final_at, ("failed", "expired", "unknown"), fail),
    ):
        bucket = (_epoch(conn, column) - t0) / width
        bucket = cast(func.floor(bucket), Integer) if conn.dialect.name == "postgresql" else cast(bucket, Integer)
        q = select(bucket, func.count()).where(recipients.c.batch_id == batch_id, column.is_not(None)).group_by(bucket)
        if status_filter:
            q = q.where(recipients.c.status.in_(status_filter))
        for i, count in conn.execute(q):
            if i is not None:
                target[min(max(int(i), 0), n - 1)] += count
    out = []
    acc = [0, 0, 0]
    for i in range(n):
        acc[0] += sub[i]
        acc[1] += dlv[i]
        acc[2] += fail[i]
        out.append({"t": t0 + (i + 1) * width, "submitted": acc[0], "delivered": acc[1], "failed": acc[2]})
    return {"start": t0, "width": width, "points": out}


# -- opt-outs -----------------------------------------------------------------------------------------------


def search_optouts(ctx: batches.Context, tenant_id: int, query: str, *, limit: int = 100) -> dict[str, Any]:
    """The tenant's opted-out numbers, masked. A full number finds that number exactly (and says whether a
    platform-wide opt-out applies to it); digits find masked numbers containing them (``1234``, ``138``)."""
    q = query.strip()
    stmt = (
        select(optouts.c.tenant_id, optouts.c.signature, optouts.c.phone_masked, optouts.c.source,
               optouts.c.updated_at)
        .where(optouts.c.opted_out.is_(True))
        .order_by(optouts.c.updated_at.desc())
        .limit(limit)
    )
    exact = None
    if q:
        try:
            phone = batches.parse_phone(q)
        except batches.InvalidPhone:
            digits = re.sub(r"\D", "", q)[:11]
            if not digits:
                return {"query": q, "rows": [], "exact": None, "total": 0}
            # masked numbers keep the first 3 and last 4 digits: match a prefix or a suffix of those
            stmt = stmt.where(optouts.c.tenant_id == tenant_id, optouts.c.phone_masked.contains(digits))
        else:
            h = ctx.vault.hash(phone.e164)
            exact = {"phone": phone.masked, **batches.optout_status(ctx, phone=phone, tenant_id=tenant_id)}
            stmt = stmt.where(optouts.c.tenant_id.in_((0, tenant_id)), optouts.c.phone_hash == h)
    else:
        stmt = stmt.where(optouts.c.tenant_id == tenant_id)
    with ctx.db.connect() as conn:
        rows = conn.execute(stmt).all()
        total = conn.execute(
            select(func.count()).select_from(optouts)
            .where(optouts.c.tenant_id == tenant_id, optouts.c.opted_out.is_(True))
        ).scalar_one()
    return {
        "query": q,
        "exact": exact,
        "total": total,
        "rows": [{"phone": r.phone_masked, "scope": gettext("platform-wide") if r.tenant_id == 0 else
                  (gettext("signature %(name)s", name=r.signature) if r.signature else gettext("all signatures")),
                  "source": r.source, "updated_at": r.updated_at} for r in rows],
    }


# -- compose: preview, estimate, quiet hours ----------------------------------------------------------------


def sample_values(kind: str, names: Sequence[str], samples: Mapping[str, str]) -> list[str]:
    """The neutral values a template is screened with at creation. Mirrors ``batches._templates._sample_values``
    (private there); ``tests/console`` checks that a preview and ``create_template`` reach the same decision."""
    out = []
    for i, name in enumerate(names):
        if name in samples:
            out.append(samples[name])
        elif kind == "verification" and (i == 0 or "code" in name.lower()):
            out.append("123456")
        else:
            out.append("某某")
    return out


def verdict_dict(verdict: Any) -> dict[str, Any]:
    return msgspec.to_builtins(verdict)


def screen(ctx: batches.Context, tenant: str, text: str, kind: str, signature: str) -> dict[str, Any]:
    engine = ctx.require_engine()
    [verdict] = engine.screen_many([Message(text=text, kind=kind, signature=signature, tenant=tenant)])  # type: ignore[arg-type]
    return verdict_dict(verdict)


def template_text(signature: str, body: str, kind: str, samples: Mapping[str, str] | None = None) -> str:
    tpl = batches.Template.compile(signature.strip().strip("【】"), body)
    return tpl.render(sample_values(kind, tpl.variables, samples or {}))


@dataclass
class Numbers:
    """Ad-hoc numbers as typed: valid ones (deduplicated) by carrier, and every rejected line."""

    valid: list[str] = field(default_factory=list)
    carriers: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0


def parse_numbers(raw: str) -> Numbers:
    out = Numbers()
    seen: set[str] = set()
    tokens = [t for t in re.split(r"[\s,;，；]+", raw or "") if t]
    if len(tokens) > MAX_ADHOC:
        raise ComposeError(gettext("at most %(n)s numbers here; upload a contact list for more", n=f"{MAX_ADHOC:,}"),
                           where="numbers", code="console.too_many_numbers")
    for i, token in enumerate(tokens, start=1):
        try:
            phone = batches.parse_phone(token)
        except batches.InvalidPhone as e:
            # the customer typed it into this very form: shown as typed, so it can be found and fixed
            out.rejected.append({"n": i, "value": token[:40], "code": e.code, "reason": e.message})
            continue
        if phone.e164 in seen:
            out.duplicates += 1
            continue
        seen.add(phone.e164)
        out.valid.append(phone.e164)
        out.carriers[phone.price_key] = out.carriers.get(phone.price_key, 0) + 1
    return out


def parse_local(value: str | None, tz: str) -> datetime | None:
    """``2026-11-25T09:30`` (a datetime-local input, in the tenant's zone) as an aware UTC time; blank = now."""
    if not value or not value.strip():
        return None
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ComposeError(gettext("not a date and time: %(value)s", value=repr(value)), where="schedule_at",
                           code="console.schedule") from None
    at = naive.replace(tzinfo=ZoneInfo(tz)) if naive.tzinfo is None else naive
    return at.astimezone(UTC)


def quiet_warning(policy: batches.PolicySections, kind: str, at: datetime | None, tz: str) -> dict[str, Any] | None:
    """When ``kind`` sent at ``at`` (None = now) falls in the policy's quiet hours: the window and when the
    release would resume, in the tenant's zone. Quiet hours defer a batch; they never drop it."""
    when = at or datetime.now(UTC)
    q = policy.batches.quiet_hours
    resume = batches.in_quiet_hours(q, kind, when)
    if resume is None:
        return None
    return {"start": q.start, "end": q.end, "zone": q.timezone, "resume_at": _iso(resume),
            "resume_local": local(resume, tz), "message":
            gettext("%(kind)s messages are not released between %(start)s and %(end)s (%(zone)s); this batch "
                    "would wait until %(at)s (%(tz)s)", kind=kind_label(kind), start=q.start, end=q.end,
                    zone=q.timezone, at=local(resume, tz), tz=tz)}


def _money(x: float) -> str:
    return f"{x:.4f}"


def estimate(
    ctx: batches.Context,
    tenant_id: int,
    tenant: str,
    *,
    kind: str,
    signature: str = "",
    content: str | None = None,
    numbers: str | None = None,
    template_id: int | None = None,
    list_id: int | None = None,
    schedule_at: str | None = None,
    tz: str = "Asia/Shanghai",
) -> dict[str, Any]:
    """The compose form's live preview: the text as it will be sent, its verdict (reasons with spans in that
    text), length and segments (engine), recipients by carrier, cost (policy prices) and any quiet-hours
    warning. Errors in the form come back in ``errors`` (field → message) rather than raising, so the form
    can show all of them at once."""
    policy = ctx.policy
    prices, length = policy.prices, policy.screening.length
    errors: dict[str, str] = {}
    carriers: dict[str, int] = {}
    rejected: list[dict[str, Any]] = []
    texts: list[tuple[str, int]] = []  # (text, how many contacts it stands for)
    approximate = False
    text = ""
    duplicates = 0
    if template_id:
        with ctx.db.connect() as conn:
            t = conn.execute(
                select(templates).where(templates.c.id == template_id, templates.c.tenant_id == tenant_id)
            ).one_or_none()
        if t is None:
            raise NotFoundError(f"no template {template_id}", where="template_id", code="template.not_found")
        if t.status != "approved":
            errors["template_id"] = gettext("template %(name)s is %(status)s; only approved templates can be sent",
                                            name=t.name, status=template_status(t.status))
        kind, signature = t.kind, t.signature
        tpl = batches.Template.compile(t.signature, t.body)
        if list_id:
            lst, sample = _list_sample(ctx, tenant_id, list_id)
            missing = [v for v in tpl.variables if v not in lst["columns"]]
            if missing:
                errors["list_id"] = gettext("the list has no column for %(names)s", names=", ".join(missing))
                texts = [(tpl.render(sample_values(kind, tpl.variables, {})), 1)]
            else:
                idx = [lst["columns"].index(v) for v in tpl.variables]
                rendered: dict[str, int] = {}
                for values in sample:
                    s = tpl.render([values[i] if i < len(values) else "" for i in idx])
                    rendered[s] = rendered.get(s, 0) + 1
                texts = list(rendered.items()) or [(tpl.render(sample_values(kind, tpl.variables, {})), 1)]
                approximate = bool(tpl.variables) and lst["valid"] > len(sample)
            carriers = lst["carriers"]
        else:
            errors["list_id"] = gettext("choose a contact list")
            texts = [(tpl.render(sample_values(kind, tpl.variables, {})), 1)]
    else:
        content = (content or "").strip()
        sig = (signature or "").strip().strip("【】")
        if not sig and content.startswith("【") and "】" in content:
            sig = content[1:].split("】", 1)[0]
        if not content:
            errors["content"] = gettext("write the message")
        elif "${" in content:
            errors["content"] = gettext("ad-hoc messages take no ${variables}; use a template and a contact list")
        if not sig:
            errors["signature"] = gettext("give a signature, or start the message with 【signature】")
        signature = sig
        if content and sig:
            texts = [(batches.Template.compile(sig, content).parts[0], 1)]
        elif content:
            texts = [(content, 1)]
        nums = parse_numbers(numbers or "")
        carriers, rejected, duplicates = nums.carriers, nums.rejected, nums.duplicates
        if not nums.valid:
            errors["numbers"] = (gettext("no valid number (%(n)s rejected)", n=len(nums.rejected)) if nums.rejected
                                 else gettext("no valid number"))
    verdicts: list[dict[str, Any]] = []
    if texts:
        engine = ctx.require_engine()
        vs = engine.screen_many(
            [Message(text=s, kind=kind, signature=signature or None, tenant=tenant) for s, _ in texts]  # type: ignore[arg-type]
        )
        verdicts = [verdict_dict(v) for v in vs]
    # the verdict shown is the worst one among the sampled contents (a block anywhere blocks those recipients)
    rank = {"pass": 0, "review": 1, "block": 2}
    worst = max(range(len(verdicts)), key=lambda i: (rank[verdicts[i]["decision"]], verdicts[i]["segments"]),
                default=None)
    verdict = verdicts[worst] if worst is not None else None
    text = texts[worst][0] if worst is not None else ""
    weight = sum(n for _, n in texts) or 1
    avg_segments = sum(v["segments"] * n for v, (_, n) in zip(verdicts, texts, strict=True)) / weight if texts else 0
    recipients = sum(carriers.values())
    cost = sum(n * avg_segments * prices.for_carrier(c) for c, n in carriers.items())
    try:
        at = parse_local(schedule_at, tz)
    except ComposeError as e:
        errors["schedule_at"] = e.message
        at = None
    if at is not None and at < datetime.now(UTC) - timedelta(minutes=10):
        errors["schedule_at"] = gettext("this time has passed; leave it empty to send now")
    if verdict is not None and verdict["decision"] == "block" and "content" not in errors:
        errors["content"] = gettext("blocked by screening: fix the highlighted reasons")
    return {
        "kind": kind,
        "signature": signature,
        "text": text,
        "verdict": verdict,
        "decision": verdict["decision"] if verdict else None,
        "length": verdict["length"] if verdict else 0,
        "segments": verdict["segments"] if verdict else 0,
        "segments_avg": round(avg_segments, 2),
        "contents_sampled": len(texts),
        "approximate": approximate,
        "encoding": "GSM-7" if verdict and verdict["length"] and _gsm_limit(policy, verdict) else "UCS-2",
        "limits": {"single": length.single, "segment": length.segment,
                   "gsm7_single": length.gsm7_single, "gsm7_segment": length.gsm7_segment, "max": length.max},
        "recipients": recipients,
        "carriers": [{"carrier": c, "label": CARRIER_LABELS.get(c, c), "count": n,
                      "price": _money(prices.for_carrier(c))} for c, n in sorted(carriers.items())],
        "rejected": rejected[:200],
        "rejected_count": len(rejected),
        "duplicates": duplicates,
        "cost": _money(cost),
        "currency": prices.currency,
        "schedule_at": _iso(at),
        "schedule_local": local(at, tz, "%Y-%m-%d %H:%M:%S") if at else None,
        "quiet": quiet_warning(policy, kind, at, tz),
        "time_zone": tz,
        "errors": errors,
    }


def _gsm_limit(policy: batches.PolicySections, verdict: Mapping[str, Any]) -> bool:
    """Whether the engine counted this text as GSM-7: its segment count only fits the GSM-7 limits."""
    n, segs = verdict["length"], verdict["segments"]
    ln = policy.screening.length
    ucs = 1 if n <= ln.single else math.ceil(n / ln.segment)
    gsm = 1 if n <= ln.gsm7_single else math.ceil(n / ln.gsm7_segment)
    return segs == gsm and segs != ucs


def _list_sample(ctx: batches.Context, tenant_id: int, list_id: int) -> tuple[dict[str, Any], list[list[str]]]:
    """A list's columns, valid count, contacts by carrier (all of them, counted in SQL) and the variable values
    of its first ``PREVIEW_SAMPLE`` contacts."""
    with ctx.db.connect() as conn:
        row = conn.execute(
            select(contact_lists).where(contact_lists.c.id == list_id, contact_lists.c.tenant_id == tenant_id)
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"no contact list {list_id}", where="list_id", code="contacts.not_found")
        carriers = dict(conn.execute(
            select(contacts.c.carrier, func.count()).where(contacts.c.list_id == list_id).group_by(contacts.c.carrier)
        ).all())
        sample = [json.loads(v) if v else [] for (v,) in conn.execute(
            select(contacts.c.vars).where(contacts.c.list_id == list_id).order_by(contacts.c.seq).limit(PREVIEW_SAMPLE)
        )]
    return {"columns": json.loads(row.columns), "valid": row.valid, "carriers": carriers}, sample


def adhoc_numbers(raw: str) -> Iterable[str]:
    return parse_numbers(raw).valid

