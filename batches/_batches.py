"""Batches: create, screen, review, schedule, cancel, report.

Life cycle (``batches.state``; every transition is an audit event ``batch.<state>`` on ``batch:<id>``)::

    draft ─submit─► screening ─► review ─(every content decided)─► approved ─► scheduled ─► releasing ─► sending
      ▲                 │           │                                                      (release worker)   │
      │                 │           │                               every recipient final (report relay) ─► done
      └─budget exceeded─┘           └──────────────► cancelled ◄─ cancel (before hand-over, or deferred)

Submitting renders every recipient's text once (template + the contact's variables, or the batch's
content), writes the recipients in one pass (COPY on PostgreSQL, chunked executemany on SQLite) with
status ``queued`` and a ``content_id``, and screens each DISTINCT rendered content once
(``Engine.screen_many``, the tenant's policy overrides; plus links/contacts inside variable values).
Per content: ``pass`` → sendable; ``block`` → its recipients ``rejected`` (reason kept); ``review`` → one
review item (source ``batch_content``, ref ``<batch id>:<content hash>``, masked sample recipients) and
the batch waits in ``review`` until every such content is decided.

Rule when contents are rejected (by policy or a reviewer): their recipients become ``rejected`` and the
batch goes on with the others; it is ``cancelled`` only when nothing sendable is left.

Materializing, screening and the transition out of ``screening`` are one transaction: a crash leaves the
batch in ``screening`` with no recipients. Submitting again redoes it from the start, and so does the
release worker once it is ``STALE_SUBMIT`` old (``resume_stale_submits``; a content batch, whose numbers were
never stored, goes back to ``draft`` saying so). The cost estimate (segments × per-carrier price) is checked
against the tenant's budget before anything is scheduled: over budget, the batch returns to ``draft`` with a
clear error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection, delete, func, insert, select, update

from smsguard import audit, billing, filing, review
from smsguard.core import ConflictError, NotFoundError
from smsguard.engine import Message
from smsguard.phones import InvalidPhone, Phone, mask, parse_phone, portability_for, ported

from . import _billing
from ._common import BatchError, BudgetExceeded, Context, aware, dumps, now, tenant_name
from ._optouts import sender_code
from ._tables import batch_contents, batches, budgets, contact_lists, contacts, recipients
from ._templates import KINDS, Template, strictest, usable_template, variable_reasons

CHUNK = 5000
MAX_CONTENTS = 200_000
"""Distinct rendered contents per batch: each is screened and kept in memory while the batch is built."""
CANCELLABLE = ("draft", "screening", "review", "approved", "scheduled")
SENDABLE_REVIEW = ("none", "approved")
_COLUMNS = ("batch_id", "seq", "phone_hash", "phone_enc", "phone_masked", "carrier", "content_id", "status", "detail")


def micros(amount: float) -> int:
    return round(amount * 1_000_000)


def money(m: int) -> str:
    return f"{m / 1_000_000:.4f}"


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
) -> dict[str, Any]:
    """Create a batch (template + contact list, template + ``variables`` + numbers, or content + numbers) and,
    unless ``draft``, submit it. ``on_created(conn, {"id", "kind", "signature", "template_id"})`` runs in the
    transaction that creates the batch (what the caller makes with it, and an idempotency key, commit with it).

    A template + numbers batch (the vendor-compatible sends: one set of values for every number) renders the
    template once; its text is stored as the batch's content, and the variable values are screened as such
    (``variable.link`` / ``variable.contact``) because the spans are found again from the template."""
    actor = actor or ctx.actor
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
                raise BatchError("a template batch needs list_id (or numbers)", where="$.list_id",
                                 code="batch.source")
            tpl = usable_template(conn, tenant_id, template_id)
        if template_id is not None and list_id is None:
            compiled = Template.compile(tpl.signature, tpl.body)
            values = dict(variables or {})
            missing = [v for v in compiled.variables if v not in values]
            if missing:
                raise BatchError(f"no value for variable(s) {', '.join(missing)}", where="$.variables",
                                 code="batch.variables")
            kind, signature = tpl.kind, tpl.signature
            text = compiled.render([str(values[v]) for v in compiled.variables])
        elif template_id is not None:
            lst = conn.execute(
                select(contact_lists).where(contact_lists.c.id == list_id, contact_lists.c.tenant_id == tenant_id)
            ).one_or_none()
            if lst is None:
                raise NotFoundError(f"no contact list {list_id}", where="$.list_id", code="contacts.not_found")
            if lst.status != "ready":
                raise ConflictError(f"contact list {list_id} is {lst.status}", where="$.list_id",
                                    code="contacts.not_ready")
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
            p = ctx.policy.signature
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
                content=text,
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
        submit_batch(ctx, tenant_id, batch_id, numbers=numbers, actor=actor)
    return get_batch(ctx, tenant_id, batch_id)


def _transition(
    conn: Connection,
    batch: Any,
    to: str,
    actor: str,
    *,
    frm: Iterable[str],
    payload: dict[str, Any] | None = None,
    when: Any = None,
    **values: Any,
) -> bool:
    """Move ``batch`` from one of ``frm`` to ``to`` (setting ``values`` too) and audit it, in ``conn``'s
    transaction; ``payload`` adds to the event, ``when`` is one more SQL condition on the batch row. False when
    the batch was no longer in ``frm`` (or ``when`` no longer held)."""
    stmt = update(batches).where(batches.c.id == batch.id, batches.c.state.in_(tuple(frm)))
    if when is not None:
        stmt = stmt.where(when)
    done = conn.execute(stmt.values(state=to, updated_at=now(), **values)).rowcount
    if done:
        event = {"batch_id": batch.id, "from": batch.state if hasattr(batch, "state") else None, "to": to}
        event.update(
            {
                k: (v.isoformat() if isinstance(v, datetime) else v)
                for k, v in values.items()
                if k in ("reason", "schedule_at", "estimate_micros", "total")
            }
        )
        event.update(payload or {})
        audit.append(
            conn,
            event_type=f"batch.{to}",
            actor=actor,
            tenant_id=batch.tenant_id,
            subject=f"batch:{batch.id}",
            payload=event,
        )
        _billing.on_state(conn, batch, to, actor)  # a batch that is over settles its prepaid hold
    return bool(done)


def _load(conn: Connection, tenant_id: int | None, batch_id: int) -> Any:
    q = select(batches).where(batches.c.id == batch_id)
    if tenant_id is not None:
        q = q.where(batches.c.tenant_id == tenant_id)
    row = conn.execute(q).one_or_none()
    if row is None:
        raise NotFoundError(f"no batch {batch_id}", where="path batch_id", code="batch.not_found")
    return row


# -- submitting: materialize, screen, decide ----------------------------------------------------------------


def submit_batch(
    ctx: Context, tenant_id: int, batch_id: int, *, numbers: Iterable[str] | None = None, actor: str | None = None
) -> dict[str, Any]:
    actor = actor or ctx.actor
    with ctx.db.begin() as conn:
        batch = _load(conn, tenant_id, batch_id)
        if batch.state == "draft":  # a draft created before the signature was rejected / withdrawn
            filing.require_approved(conn, tenant_id, batch.signature)
            _transition(conn, batch, "screening", actor, frm=("draft",))
        elif batch.state != "screening":
            raise ConflictError(
                f"batch {batch_id} is {batch.state}; only a draft can be submitted",
                where="path batch_id",
                code="batch.state",
            )
    if batch.list_id is None and numbers is None:
        raise BatchError("a content batch is submitted with its numbers", where="$.numbers", code="batch.numbers")
    try:
        _screen(ctx, batch_id, numbers, actor)
    except (BudgetExceeded, billing.InsufficientBalance) as e:
        with ctx.db.begin() as conn:
            batch = _load(conn, tenant_id, batch_id)
            _transition(conn, batch, "draft", actor, frm=("screening",), reason=e.message)
        raise
    return get_batch(ctx, tenant_id, batch_id)


STALE_SUBMIT = timedelta(minutes=5)  # far above a 1M-recipient submit (~40 s): older means it crashed
INTERRUPTED = "the submit was interrupted before its numbers were stored: submit the batch again with its numbers"


def resume_stale_submits(ctx: Context, *, older_than: timedelta = STALE_SUBMIT, actor: str) -> dict[int, str]:
    """Batches a crashed submit left in ``screening``: a template batch is screened again from the start (its
    contacts are in SQL); a content batch cannot be (its numbers came with the request and were never
    stored), so it goes back to ``draft`` with the reason. Returns ``{batch id: what was done}``.

    Each batch is taken by an UPDATE that also makes it fresh, so of several workers one resumes it.
    """
    done: dict[int, str] = {}
    with ctx.db.connect() as conn:
        stale = conn.execute(
            select(batches.c.id).where(batches.c.state == "screening", batches.c.updated_at < now() - older_than)
        ).scalars().all()
    for batch_id in stale:
        with ctx.db.begin() as conn:
            # taking it makes it fresh, so a second worker's identical UPDATE finds nothing
            taken = conn.execute(
                update(batches)
                .where(
                    batches.c.id == batch_id,
                    batches.c.state == "screening",
                    batches.c.updated_at < now() - older_than,
                )
                .values(updated_at=now())
            ).rowcount
            batch = _load(conn, None, batch_id) if taken else None
            if batch is not None and batch.list_id is None:
                _transition(conn, batch, "draft", actor, frm=("screening",), reason=INTERRUPTED)
                done[batch_id] = "draft"
        if batch is None or batch.list_id is None:
            continue
        try:
            _screen(ctx, batch_id, None, actor)
            done[batch_id] = "screened"
        except (BudgetExceeded, billing.InsufficientBalance) as e:
            with ctx.db.begin() as conn:
                _transition(conn, _load(conn, None, batch_id), "draft", actor, frm=("screening",), reason=e.message)
            done[batch_id] = "draft"
    return done


def _screen(ctx: Context, batch_id: int, numbers: Iterable[str] | None, actor: str) -> None:
    engine = ctx.require_engine()
    policy = ctx.policy
    with ctx.db.begin() as conn:
        batch = _load(conn, None, batch_id)
        if batch.state != "screening":
            return
        tname = tenant_name(conn, batch.tenant_id)
        conn.execute(delete(recipients).where(recipients.c.batch_id == batch_id))  # a re-run starts afresh
        conn.execute(delete(batch_contents).where(batch_contents.c.batch_id == batch_id))
        contents: dict[str, list[Any]] = {}  # text -> [content_id, recipients, spans, {carrier: n}]
        if batch.list_id is not None:
            rows = _template_rows(ctx, conn, batch, contents)
        else:
            # the spans are read now, with the writer's connection: once COPY runs, that connection is busy
            rows = _number_rows(ctx, batch, numbers or (), contents, _value_spans(conn, batch))
        total = _write_recipients(conn, rows)
        total_dups = _mark_duplicates(conn, batch_id) if batch.list_id is None else 0
        # screen each distinct content once
        texts = list(contents)
        content_rows = []
        blocked: list[int] = []
        pending: list[tuple[int, str, str, dict[str, Any], int]] = []
        estimate = 0
        # the tenant's price list (billing; the policy's prices below it): the estimate is what is held
        price = _billing.prices_for(ctx, conn, batch.tenant_id, batch.kind)
        per_carrier = _queued_by_content_carrier(conn, batch_id) if total_dups else None
        for i in range(0, len(texts), 500):
            part = texts[i : i + 500]
            verdicts = engine.screen_many(
                [Message(text=t, kind=batch.kind, signature=batch.signature, tenant=tname) for t in part]
            )  # type: ignore[arg-type]
            for text, verdict in zip(part, verdicts, strict=True):
                cid, count, spans, carriers = contents[text]
                extra = variable_reasons(policy, text, spans, verdict) if spans else []
                if extra:
                    verdict.reasons = sorted([*verdict.reasons, *extra], key=lambda r: (r.start is None, r.start or 0))
                decision = strictest(verdict, extra)
                verdict.decision = decision  # type: ignore[assignment]
                if per_carrier is not None:  # duplicates were dropped: count what is still queued
                    carriers = per_carrier.get(cid, {})
                    count = sum(carriers.values())
                cost = sum(n * verdict.segments * price.get(c, price["other"]) for c, n in carriers.items())
                h = hashlib.sha256(text.encode()).hexdigest()
                vdict = msgspec.to_builtins(verdict)
                reason = (
                    "; ".join(
                        f"{r.code}" + (f" ({r.term})" if r.term else "")
                        for r in verdict.reasons
                        if r.action == decision
                    )[:2000]
                    or None
                )
                state = {"pass": "none", "review": "pending", "block": "none"}[decision]
                content_rows.append(
                    {
                        "batch_id": batch_id,
                        "content_id": cid,
                        "content_hash": h,
                        "text": text,
                        "spans": dumps(spans),
                        "segments": verdict.segments,
                        "recipients": count,
                        "decision": decision,
                        "verdict": dumps(vdict),
                        "review": state,
                        "reason": reason,
                        "cost_micros": cost,
                    }
                )
                if decision == "block":
                    blocked.append(cid)
                else:
                    estimate += cost
                if decision == "review":
                    pending.append((cid, h, text, vdict, count))
        for i in range(0, len(content_rows), 1000):
            conn.execute(insert(batch_contents), content_rows[i : i + 1000])
        for i in range(0, len(blocked), 500):
            conn.execute(
                update(recipients)
                .where(
                    recipients.c.batch_id == batch_id,
                    recipients.c.content_id.in_(blocked[i : i + 500]),
                    recipients.c.status == "queued",
                )
                .values(status="rejected", detail="blocked by screening")
            )
        _check_budget(conn, batch, estimate)
        _billing.take_hold(conn, batch, estimate, price, actor)  # prepaid: no overdraft (402), else a no-op
        conn.execute(update(batches).where(batches.c.id == batch_id).values(total=total, estimate_micros=estimate))
        audit.append(
            conn,
            event_type="batch.screened",
            actor=actor,
            tenant_id=batch.tenant_id,
            subject=f"batch:{batch_id}",
            payload={
                "batch_id": batch_id,
                "recipients": total,
                "contents": len(texts),
                "blocked": len(blocked),
                "review": len(pending),
                "estimate": money(estimate),
                "versions": msgspec.to_builtins(engine.versions),
            },
        )
        for cid, h, text, vdict, count in pending:
            samples = [
                m
                for (m,) in conn.execute(
                    select(recipients.c.phone_masked)
                    .where(recipients.c.batch_id == batch_id, recipients.c.content_id == cid)
                    .limit(5)
                )
            ]
            review.submit(
                conn,
                tenant_id=batch.tenant_id,
                source="batch_content",
                source_ref=f"{batch_id}:{h}",
                text=text,
                verdict=vdict,
                priority=1 if batch.kind == "verification" else 0,
                batch_size=count,
                sample_recipients=samples,
            )
        if pending:
            _transition(conn, batch, "review", actor, frm=("screening",))
        else:
            _after_decisions(conn, _load(conn, None, batch_id), actor)


def _queued_by_content_carrier(conn: Connection, batch_id: int) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for cid, carrier, n in conn.execute(
        select(recipients.c.content_id, recipients.c.carrier, func.count())
        .where(recipients.c.batch_id == batch_id, recipients.c.status == "queued")
        .group_by(recipients.c.content_id, recipients.c.carrier)
    ):
        out.setdefault(cid, {})[carrier] = n
    return out


def _check_budget(conn: Connection, batch: Any, estimate: int) -> None:
    row = conn.execute(select(budgets).where(budgets.c.tenant_id == batch.tenant_id)).one_or_none()
    if row is not None and row.spent_micros + estimate > row.limit_micros:
        left = row.limit_micros - row.spent_micros
        raise BudgetExceeded(
            f"batch {batch.id} would cost {money(estimate)}, more than the tenant's remaining budget "
            f"{money(left)} (limit {money(row.limit_micros)}, spent {money(row.spent_micros)}); the batch is back "
            "in draft: raise the budget or shrink the batch, then submit it again",
            where="budget",
            code="budget.exceeded",
        )


def _new_content(contents: dict[str, list[Any]], text: str, spans: list[Any]) -> list[Any]:
    if len(contents) >= MAX_CONTENTS:
        raise BatchError(
            f"more than {MAX_CONTENTS} distinct rendered contents; each is screened, so keep variable "
            "values to a bounded set",
            where="$",
            code="batch.too_many_contents",
        )
    entry = [len(contents) + 1, 0, spans, {}]
    contents[text] = entry
    return entry


def _template_rows(ctx: Context, conn: Connection, batch: Any, contents: dict[str, list[Any]]) -> Iterator[tuple]:
    from ._tables import templates

    # read with the writer's connection now: once COPY runs, that connection is busy until it ends
    t = conn.execute(select(templates).where(templates.c.id == batch.template_id)).one()
    lst = conn.execute(select(contact_lists.c.columns).where(contact_lists.c.id == batch.list_id)).scalar_one()
    tpl = Template.compile(t.signature, t.body)
    columns = json.loads(lst)
    return _render_contacts(ctx, batch, tpl, [columns.index(v) for v in tpl.variables], contents)


def _render_contacts(
    ctx: Context, batch: Any, tpl: Template, idx: list[int], contents: dict[str, list[Any]]
) -> Iterator[tuple]:
    loads = json.loads
    bid = batch.id
    with ctx.db.connect() as reader:  # a second connection: streams while the first one writes
        result = reader.execution_options(stream_results=True, yield_per=10_000).execute(
            select(
                contacts.c.seq,
                contacts.c.phone_hash,
                contacts.c.phone_enc,
                contacts.c.phone_masked,
                contacts.c.carrier,
                contacts.c.vars,
            )
            .where(contacts.c.list_id == batch.list_id)
            .order_by(contacts.c.seq)
        )
        portability = portability_for(ctx.db, ctx.vault)
        for part in result.partitions():
            moved = portability.carriers_of_hashes(row[1] for row in part)  # ported since the list was imported
            for seq, h, enc, masked, carrier, raw_vars in part:
                carrier = moved.get(h, carrier)
                values = [loads(raw_vars)[i] for i in idx] if idx else ()
                text = tpl.render(values)
                entry = contents.get(text)
                if entry is None:
                    entry = _new_content(contents, text, tpl.spans(values) if idx else [])
                entry[1] += 1
                entry[3][carrier] = entry[3].get(carrier, 0) + 1
                yield (bid, seq, h, enc, masked, carrier, entry[0], "queued", None)


def _number_rows(
    ctx: Context, batch: Any, numbers: Iterable[str], contents: dict[str, list[Any]], spans: list[Any]
) -> Iterator[tuple]:
    entry = _new_content(contents, batch.content, spans)
    numbered = enumerate(numbers, start=1)
    while part := list(itertools.islice(numbered, 1000)):
        yield from _number_chunk(ctx, batch.id, part, entry)


def _value_spans(conn: Connection, batch: Any) -> list[Any]:
    """Where the variable values sit in a template + numbers batch's rendered text (none for a content batch):
    the template's literal parts are matched against the text, so the values are screened as variables."""
    import re

    from ._tables import templates

    if batch.template_id is None:
        return []
    t = conn.execute(select(templates.c.signature, templates.c.body).where(templates.c.id == batch.template_id)).one()
    tpl = Template.compile(t.signature, t.body)
    if not tpl.slots:
        return []
    pattern, seen = [re.escape(tpl.parts[0])], set()
    for i, slot in enumerate(tpl.slots):  # a variable used twice has the same value twice: a back-reference
        pattern.append(f"(?P=v{slot})" if slot in seen else f"(?P<v{slot}>.*?)")
        seen.add(slot)
        pattern.append(re.escape(tpl.parts[i + 1]))
    m = re.fullmatch("".join(pattern), batch.content, re.DOTALL)
    if m is None:  # cannot happen for a text this template rendered; screened as content alone then
        return []
    return tpl.spans([m[f"v{slot}"] for slot in range(len(tpl.variables))])


def _number_chunk(ctx: Context, bid: int, part: list[tuple[int, str]], entry: list[Any]) -> Iterator[tuple]:
    vault = ctx.vault
    parsed: list[tuple[int, str, Phone | InvalidPhone]] = []
    for seq, raw in part:
        try:
            parsed.append((seq, raw, parse_phone(raw)))
        except InvalidPhone as e:
            parsed.append((seq, raw, e))
    hashes = {id(p): vault.hash(p.e164) for _, _, p in parsed if isinstance(p, Phone)}
    moved = portability_for(ctx.db, vault).carriers_of_hashes(hashes.values())  # 携号转网 before the block
    for seq, raw, phone in parsed:
        if isinstance(phone, InvalidPhone):
            yield (bid, seq, "", None, mask(raw), "other", entry[0], "invalid", phone.message)
            continue
        h = hashes[id(phone)]
        if h in moved:
            phone = ported(phone, moved[h])
        entry[1] += 1
        entry[3][phone.price_key] = entry[3].get(phone.price_key, 0) + 1
        yield (bid, seq, h, vault.encrypt(phone.e164), phone.masked, phone.price_key, entry[0], "queued", None)


def _write_recipients(conn: Connection, rows: Iterator[tuple]) -> int:
    n = 0
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY recipients ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n
    chunk: list[dict[str, Any]] = []
    stmt = insert(recipients)
    for row in rows:
        chunk.append(dict(zip(_COLUMNS, row, strict=True)))
        if len(chunk) >= CHUNK:
            conn.execute(stmt, chunk)
            n += len(chunk)
            chunk = []
    if chunk:
        conn.execute(stmt, chunk)
        n += len(chunk)
    return n


def _mark_duplicates(conn: Connection, batch_id: int) -> int:
    """A number given twice in a content batch is sent once: later copies become ``invalid`` (duplicate)."""
    first = (
        select(func.min(recipients.c.seq))
        .where(recipients.c.batch_id == batch_id, recipients.c.status == "queued")
        .group_by(recipients.c.phone_hash)
    )
    return conn.execute(
        update(recipients)
        .where(recipients.c.batch_id == batch_id, recipients.c.status == "queued", recipients.c.seq.not_in(first))
        .values(status="invalid", detail="duplicate number in this batch")
    ).rowcount


def _after_decisions(conn: Connection, batch: Any, actor: str) -> None:
    """Every content is decided: schedule what is sendable, or cancel when nothing is."""
    pending = conn.execute(
        select(func.count())
        .select_from(batch_contents)
        .where(batch_contents.c.batch_id == batch.id, batch_contents.c.review == "pending")
    ).scalar_one()
    if pending:
        return
    sendable = conn.execute(
        select(func.coalesce(func.sum(batch_contents.c.recipients), 0)).where(
            batch_contents.c.batch_id == batch.id,
            batch_contents.c.decision != "block",
            batch_contents.c.review.in_(SENDABLE_REVIEW),
        )
    ).scalar_one()
    estimate = conn.execute(
        select(func.coalesce(func.sum(batch_contents.c.cost_micros), 0)).where(
            batch_contents.c.batch_id == batch.id,
            batch_contents.c.decision != "block",
            batch_contents.c.review.in_(SENDABLE_REVIEW),
        )
    ).scalar_one()
    if not sendable:
        # the reviewer's own words reach the customer, not only "nothing to send"
        rejected = [
            r for (r,) in conn.execute(
                select(batch_contents.c.reason).where(
                    batch_contents.c.batch_id == batch.id, batch_contents.c.review == "rejected"
                ).order_by(batch_contents.c.content_id).limit(5)
            ) if r
        ]
        _transition(
            conn,
            batch,
            "cancelled",
            actor,
            frm=("screening", "review"),
            reason=("rejected in review: " + "; ".join(dict.fromkeys(rejected)))[:2000] if rejected
            else "nothing to send: every content was blocked or rejected",
        )
        conn.execute(
            update(recipients)
            .where(recipients.c.batch_id == batch.id, recipients.c.status == "queued")
            .values(status="cancelled")
        )
        return
    if _transition(conn, batch, "approved", actor, frm=("screening", "review"), estimate_micros=int(estimate)):
        batch = _load(conn, None, batch.id)
        _transition(conn, batch, "scheduled", actor, frm=("approved",), schedule_at=batch.schedule_at or now())


def on_content_decision(conn: Connection, decision: Any) -> None:
    """Review handler (source ``batch_content``), inside the decision's transaction."""
    batch_id_s, _, h = decision.source_ref.partition(":")
    batch = conn.execute(select(batches).where(batches.c.id == int(batch_id_s))).one_or_none()
    if batch is None:
        return
    row = conn.execute(
        select(batch_contents.c.content_id, batch_contents.c.review).where(
            batch_contents.c.batch_id == batch.id, batch_contents.c.content_hash == h
        )
    ).one_or_none()
    if row is None or row.review != "pending":
        return  # decided before (a repeat): nothing changes
    actor = f"user:{decision.deciders[-1]}" if getattr(decision, "deciders", None) else "system:review"
    conn.execute(
        update(batch_contents)
        .where(batch_contents.c.batch_id == batch.id, batch_contents.c.content_id == row.content_id)
        .values(review="approved" if decision.approved else "rejected", reason=decision.reason,
                review_category=(decision.category or None) and str(decision.category)[:32])
    )
    if not decision.approved:
        conn.execute(
            update(recipients)
            .where(
                recipients.c.batch_id == batch.id,
                recipients.c.content_id == row.content_id,
                recipients.c.status == "queued",
            )
            .values(status="rejected", detail=f"rejected in review: {decision.reason or ''}"[:500])
        )
    audit.append(
        conn,
        event_type="batch.content_decided",
        actor=actor,
        tenant_id=batch.tenant_id,
        subject=f"batch:{batch.id}",
        payload={
            "batch_id": batch.id,
            "content_hash": h,
            "approved": bool(decision.approved),
            "reason": decision.reason,
            "category": decision.category,
        },
    )
    if batch.state == "review":
        _after_decisions(conn, batch, actor)


# -- cancelling, budgets, reading -----------------------------------------------------------------------------


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
            if not _transition(conn, batch, "cancelled", actor, frm=("releasing",), reason=reason,
                               when=batches.c.lease_owner.is_(None)):
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
                    update(batches).where(batches.c.id == batch_id)
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


def set_budget(ctx: Context, tenant_id: int, limit: float | None, *, actor: str | None = None) -> dict[str, Any]:
    """Set (or with None remove) a tenant's budget, in the policy's currency."""
    from sqlalchemy.dialects import postgresql, sqlite

    with ctx.db.begin() as conn:
        if limit is None:
            conn.execute(delete(budgets).where(budgets.c.tenant_id == tenant_id))
        else:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(budgets).values(
                tenant_id=tenant_id, limit_micros=micros(limit), spent_micros=0, updated_at=now()
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id"],
                    set_={"limit_micros": stmt.excluded.limit_micros, "updated_at": stmt.excluded.updated_at},
                )
            )
        audit.append(
            conn,
            event_type="budget",
            actor=actor or ctx.actor,
            tenant_id=tenant_id,
            subject=f"tenant:{tenant_id}",
            payload={"limit": limit},
        )
    return get_budget(ctx, tenant_id)


def get_budget(ctx: Context, tenant_id: int) -> dict[str, Any]:
    with ctx.db.connect() as conn:
        row = conn.execute(select(budgets).where(budgets.c.tenant_id == tenant_id)).one_or_none()
    currency = ctx.policy.prices.currency
    if row is None:
        return {"limit": None, "spent": "0.0000", "remaining": None, "currency": currency}
    return {
        "limit": money(row.limit_micros),
        "spent": money(row.spent_micros),
        "remaining": money(row.limit_micros - row.spent_micros),
        "currency": currency,
    }


def _iso(dt: datetime | None) -> str | None:
    dt = aware(dt)
    return dt.isoformat() if dt else None


def status_counts(conn: Connection, batch_id: int) -> dict[str, int]:
    """How many recipients of the batch are in each status."""
    return dict(
        conn.execute(
            select(recipients.c.status, func.count())
            .where(recipients.c.batch_id == batch_id)
            .group_by(recipients.c.status)
        ).all()
    )


def hold_of(ctx: Context, b: Any, counts: dict[str, int]) -> dict[str, Any] | None:
    """Why a batch that is not cancelled waits, and until when: quiet hours (released batches keep their
    recipients ``deferred``; a scheduled one will be held as soon as it is due)."""
    from ._release import in_quiet_hours

    if b.state == "releasing" and b.resume_at is not None and counts.get("deferred"):
        return {"reason": "quiet_hours", "until": _iso(b.resume_at)}
    if b.state in ("approved", "scheduled"):
        due = max(aware(b.schedule_at) or now(), now())
        resume = in_quiet_hours(ctx.policy, b.kind, due)
        if resume is not None:
            return {"reason": "quiet_hours", "until": _iso(resume)}
    return None


def get_batch(ctx: Context, tenant_id: int | None, batch_id: int) -> dict[str, Any]:
    from ._settle import waiting_for

    with ctx.db.connect() as conn:
        b = _load(conn, tenant_id, batch_id)
        counts = status_counts(conn, batch_id)
        contents = conn.execute(
            select(
                batch_contents.c.content_id,
                batch_contents.c.content_hash,
                batch_contents.c.decision,
                batch_contents.c.review,
                batch_contents.c.segments,
                batch_contents.c.recipients,
                batch_contents.c.reason,
                batch_contents.c.review_category,
            )
            .where(batch_contents.c.batch_id == batch_id)
            .order_by(batch_contents.c.content_id)
            .limit(100)
        ).all()
    return {
        "id": b.id,
        "name": b.name,
        "state": b.state,
        "kind": b.kind,
        "signature": b.signature,
        "sender": b.sender,
        "template_id": b.template_id,
        "list_id": b.list_id,
        "schedule_at": _iso(b.schedule_at),
        "resume_at": _iso(b.resume_at),
        "total": b.total,
        "reason": b.reason,
        "estimate": money(b.estimate_micros),
        "currency": ctx.policy.prices.currency,
        "counts": {s: counts.get(s, 0) for s in sorted(counts)},
        "waiting_for": waiting_for(ctx, b.state, counts),
        "hold": hold_of(ctx, b, counts),
        "cancellable": b.state in CANCELLABLE or (b.state == "releasing" and b.lease_owner is None),
        # the human review of each content held for it: the reviewer's decision, reason and category
        "review": [
            {
                "content_id": c.content_id,
                "decision": c.review,
                "reason": c.reason if c.review != "pending" else None,
                "category": c.review_category,
            }
            for c in contents
            if c.review != "none"
        ],
        "contents": [
            {
                "content_id": c.content_id,
                "content_hash": c.content_hash,
                "decision": c.decision,
                "review": c.review,
                "segments": c.segments,
                "recipients": c.recipients,
                "reason": c.reason,
            }
            for c in contents
        ],
        "created_at": _iso(b.created_at),
        "released_at": _iso(b.released_at),
        "done_at": _iso(b.done_at),
    }


REPORT_COLUMNS = ("seq", "phone", "carrier", "status", "detail", "submitted_at", "final_at", "gateway", "carrier_code")


def list_recipients(
    ctx: Context, tenant_id: int, batch_id: int, *, status: str | None = None, after: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    with ctx.db.connect() as conn:
        _load(conn, tenant_id, batch_id)
        q = (
            select(recipients)
            .where(recipients.c.batch_id == batch_id, recipients.c.seq > after)
            .order_by(recipients.c.seq)
            .limit(min(max(limit, 1), 1000))
        )
        if status:
            q = q.where(recipients.c.status == status)
        return [_recipient(r) for r in conn.execute(q)]


def _recipient(r: Any) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "phone": r.phone_masked,
        "carrier": r.carrier,
        "status": r.status,
        "detail": r.detail,
        "submitted_at": _iso(r.submitted_at),
        "final_at": _iso(r.final_at),
        "gateway": r.gateway,
        "carrier_code": r.carrier_code,
    }


def report_csv(ctx: Context, tenant_id: int, batch_id: int) -> Iterator[str]:
    """Every recipient of a batch (masked numbers), streamed as CSV text chunks."""
    from ._contacts import _csv_line

    with ctx.db.connect() as conn:
        _load(conn, tenant_id, batch_id)
    yield ",".join(REPORT_COLUMNS) + "\r\n"
    with ctx.db.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(
            select(recipients).where(recipients.c.batch_id == batch_id).order_by(recipients.c.seq)
        )
        for part in result.partitions():
            yield "".join(_csv_line([_recipient(r)[c] for c in REPORT_COLUMNS]) for r in part)
