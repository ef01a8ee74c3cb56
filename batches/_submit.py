"""Submitting a batch: materialize its recipients, screen each distinct content once, decide.

Submitting renders every recipient's text once (template + the contact's variables, or the batch's
content), writes the recipients in one pass (COPY on PostgreSQL, chunked executemany on SQLite) with
status ``queued`` and a ``content_id``, and screens each DISTINCT rendered content once
(``Engine.screen_many``, the tenant's policy overrides; plus links/contacts inside variable values).
Per content: ``pass`` → sendable; ``block`` → its recipients ``rejected`` (reason kept); ``review`` → one
review item (source ``batch_content``, ref ``<batch id>:<content hash>``, masked sample recipients) and
the batch waits in ``review`` until every such content is decided (``_decisions``).

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
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection, delete, func, insert, select, update

from smsguard import audit, billing, filing, review
from smsguard.core import ConflictError
from smsguard.engine import Message
from smsguard.phones import InvalidPhone, Phone, mask, parse_phone, portability_for, ported

from . import _billing
from ._common import BatchError, BudgetExceeded, Context, dumps, now, tenant_name
from ._decisions import _after_decisions
from ._lifecycle import _load, _transition, money
from ._reading import get_batch
from ._tables import batch_contents, batches, budgets, contact_lists, contacts, recipients
from ._templates import Template, strictest, variable_reasons

CHUNK = 5000
MAX_CONTENTS = 200_000
_COLUMNS = ("batch_id", "seq", "phone_hash", "phone_enc", "phone_masked", "carrier", "content_id", "status", "detail")


def submit_batch(
    ctx: Context,
    tenant_id: int,
    batch_id: int,
    *,
    numbers: Iterable[str] | None = None,
    actor: str | None = None,
    texts: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Screen and schedule a draft. ``texts`` (one per number, a content batch only) gives each number its own
    text: customers' protocol SUBMITs grouped into one batch, each distinct text screened once; no number is
    dropped as a duplicate then (two SUBMITs to one number are two messages)."""
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
        _screen(ctx, batch_id, numbers, actor, texts)
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
        stale = (
            conn.execute(
                select(batches.c.id).where(batches.c.state == "screening", batches.c.updated_at < now() - older_than)
            )
            .scalars()
            .all()
        )
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


def _screen(
    ctx: Context, batch_id: int, numbers: Iterable[str] | None, actor: str, texts: Sequence[str] | None = None
) -> None:
    engine = ctx.require_engine()
    policy = ctx.policy.screening
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
        elif texts is not None:
            rows = _text_rows(ctx, batch, list(numbers or ()), texts, contents)
        else:
            # the spans are read now, with the writer's connection: once COPY runs, that connection is busy
            rows = _number_rows(ctx, batch, numbers or (), contents, _value_spans(conn, batch))
        total = _write_recipients(conn, rows)
        total_dups = _mark_duplicates(conn, batch_id) if batch.list_id is None and texts is None else 0
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
        yield from _number_chunk(ctx, batch.id, part, [entry] * len(part))


def _text_rows(
    ctx: Context, batch: Any, numbers: list[str], texts: Sequence[str], contents: dict[str, list[Any]]
) -> Iterator[tuple]:
    """Each number with its own text (normalized as a content batch's: the 【signature】 in front)."""
    if len(texts) != len(numbers):
        raise BatchError("one text per number", where="$.texts", code="batch.texts")
    entries = []
    for t in texts:
        text = Template.compile(batch.signature, t).parts[0]
        entries.append(contents.get(text) or _new_content(contents, text, []))
    for i in range(0, len(numbers), 1000):
        part = list(enumerate(numbers[i : i + 1000], start=i + 1))
        yield from _number_chunk(ctx, batch.id, part, entries[i : i + 1000])


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


def _number_chunk(ctx: Context, bid: int, part: list[tuple[int, str]], entries: Sequence[list[Any]]) -> Iterator[tuple]:
    vault = ctx.vault
    parsed: list[tuple[int, str, Phone | InvalidPhone]] = []
    for seq, raw in part:
        try:
            parsed.append((seq, raw, parse_phone(raw)))
        except InvalidPhone as e:
            parsed.append((seq, raw, e))
    hashes = {id(p): vault.hash(p.e164) for _, _, p in parsed if isinstance(p, Phone)}
    moved = portability_for(ctx.db, vault).carriers_of_hashes(hashes.values())  # 携号转网 before the block
    for (seq, raw, phone), entry in zip(parsed, entries, strict=True):
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
