"""What a customer does with a contact list once it is imported (issue 19 point 3): preview it, export it, merge
several into a new one.

* ``preview_contacts``: the first contacts of a list, numbers masked, with their variable values.
* ``export_contacts``: the whole list as CSV text chunks (``phone`` first, then the variable columns by their header),
  streamed in constant memory. It reads back in with ``import_contacts`` to the same list. Numbers are in full
  only when the caller says the reader may see them (the owning tenant's writers); otherwise masked. Every cell
  goes through ``audit.neutralize``, the audit export's spreadsheet-formula guard (a variable value ``=HYPERLINK(…)``
  is the customer's data, not a formula). Each export is an audit event, written before any row leaves.
* ``merge_lists``: two or more of the tenant's ready lists into a new list, de-duplicated by phone identity (the
  keyed hash of the E.164 number, so ``+86 138…`` and ``138…`` are one contact); the first list given wins a
  duplicate, its variable values kept. Columns are the union of the lists' columns in order of first appearance;
  a contact of a list without a column gets an empty value. Opted-out numbers stay, as in every list: an opt-out
  can be for one signature only and can be lifted, so it is applied at release, never by editing lists; the
  merge reports how many of the new list's numbers are opted out now.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from smsguard import audit
from smsguard.core import ConflictError, InputError, NotFoundError

from ._common import Context, dumps, now
from ._contacts import CHUNK, _insert_chunk, get_list
from ._tables import contact_lists, contacts, optouts

MAX_MERGE = 20
"""Lists one merge may take: enough for a campaign's pieces, few enough to name them in one audit event."""
PREVIEW = 20
_CSV_CHUNK = 64 * 1024


class ListToolError(InputError):
    code = "contacts.merge"


def _ready(conn: Any, tenant_id: int, list_id: int, where: str) -> Any:
    row = conn.execute(
        select(contact_lists).where(contact_lists.c.id == list_id, contact_lists.c.tenant_id == tenant_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no contact list {list_id}", where=where, code="contacts.not_found")
    if row.status != "ready":
        raise ConflictError(
            f"contact list {list_id} is {row.status}, not ready", where=where, code="contacts.not_ready"
        )
    return row


def opted_out_count(conn: Any, tenant_id: int, list_id: int) -> int:
    """Numbers of the list opted out for this tenant (any signature) or platform-wide: skipped at release."""
    return conn.execute(
        select(func.count(func.distinct(contacts.c.phone_hash)))
        .join(
            optouts,
            and_(
                optouts.c.phone_hash == contacts.c.phone_hash,
                optouts.c.opted_out.is_(True),
                optouts.c.tenant_id.in_((0, tenant_id)),
            ),
        )
        .where(contacts.c.list_id == list_id)
    ).scalar_one()


def preview_contacts(ctx: Context, tenant_id: int, list_id: int, *, limit: int = PREVIEW) -> dict[str, Any]:
    """The list's first ``limit`` contacts (masked number, carrier, variable values) and its column names."""
    lst = get_list(ctx, tenant_id, list_id, errors=0)
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(contacts.c.seq, contacts.c.line, contacts.c.phone_masked, contacts.c.carrier, contacts.c.vars)
            .where(contacts.c.list_id == list_id)
            .order_by(contacts.c.seq)
            .limit(max(1, min(limit, 200)))
        ).all()
    return {
        "list_id": list_id,
        "columns": lst["columns"],
        "valid": lst["valid"],
        "contacts": [
            {
                "seq": r.seq,
                "line": r.line,
                "phone": r.phone_masked,
                "carrier": r.carrier,
                "values": json.loads(r.vars) if r.vars else [],
            }
            for r in rows
        ],
    }


def export_contacts(
    ctx: Context, tenant_id: int, list_id: int, *, full: bool, actor: str | None = None, via: str = "api"
) -> Iterator[str]:
    """The list as CSV text chunks; ``full`` numbers for readers allowed to see them, masked otherwise.

    The list is checked and the ``contacts.exported`` event committed here, before the iterator is returned: a
    refused export raises before any response starts, an allowed one is on record before its first number."""
    with ctx.db.begin() as conn:
        row = _ready(conn, tenant_id, list_id, "path list_id")
        audit.append(
            conn,
            event_type="contacts.exported",
            actor=actor or ctx.actor,
            tenant_id=tenant_id,
            subject=f"contact_list:{list_id}",
            payload={"list_id": list_id, "masked": not full, "contacts": row.valid, "via": via},
        )
    return _export_rows(ctx, list_id, json.loads(row.columns), full)


def _export_rows(ctx: Context, list_id: int, columns: list[str], full: bool) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([audit.neutralize(c) for c in ("phone", *columns)])
    yield _take(buf)
    vault = ctx.vault
    with ctx.db.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            select(contacts.c.phone_enc, contacts.c.phone_masked, contacts.c.vars)
            .where(contacts.c.list_id == list_id)
            .order_by(contacts.c.seq)
        )
        for part in result.partitions():
            for r in part:
                phone = _national(vault.decrypt(r.phone_enc)) if full else r.phone_masked
                values = json.loads(r.vars) if r.vars else []
                values += [""] * (len(columns) - len(values))
                w.writerow([audit.neutralize(phone), *(audit.neutralize(str(v)) for v in values)])
            if buf.tell() >= _CSV_CHUNK:
                yield _take(buf)
    if buf.tell():
        yield _take(buf)


def _take(buf: io.StringIO) -> str:
    out = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return out


def _national(e164: str) -> str:
    """A mainland number as customers write it (``13812345678``); other numbers keep their ``+``."""
    return e164[3:] if e164.startswith("+86") else e164


def merge_lists(
    ctx: Context, tenant_id: int, list_ids: Sequence[int], name: str, *, actor: str | None = None
) -> dict[str, Any]:
    """A new ready list holding every distinct number of ``list_ids`` (see the module's text); returns its
    summary (``get_list``) plus ``sources`` and ``opted_out``."""
    ids = list(dict.fromkeys(int(i) for i in list_ids))
    if len(ids) < 2:
        raise ListToolError("give two or more different lists to merge", where="$.list_ids", code="contacts.merge")
    if len(ids) > MAX_MERGE:
        raise ListToolError(f"at most {MAX_MERGE} lists in one merge", where="$.list_ids", code="contacts.merge")
    name = name.strip()
    if not name or len(name) > 100:
        raise ListToolError("the new list needs a name of 1-100 characters", where="$.name", code="contacts.name")
    with ctx.db.connect() as conn:
        sources = [_ready(conn, tenant_id, lid, f"$.list_ids[{i}]") for i, lid in enumerate(ids)]
    columns: list[str] = []
    for s in sources:
        columns += [c for c in json.loads(s.columns) if c not in columns]
    with ctx.db.begin() as conn:
        new_id = conn.execute(
            insert(contact_lists)
            .values(
                tenant_id=tenant_id,
                name=name,
                status="importing",
                encoding="merged",
                columns=dumps(columns),
                created_at=now(),
            )
            .returning(contact_lists.c.id)
        ).scalar_one()
    try:
        total, valid = _copy(ctx, new_id, sources, columns)
    except Exception as e:
        with ctx.db.begin() as conn:
            conn.execute(
                update(contact_lists)
                .where(contact_lists.c.id == new_id)
                .values(status="failed", error=str(e)[:2000], finished_at=now())
            )
        raise
    counts = {"total": total, "valid": valid, "invalid": 0, "duplicates": total - valid}
    with ctx.db.begin() as conn:
        conn.execute(
            update(contact_lists)
            .where(contact_lists.c.id == new_id)
            .values(status="ready", finished_at=now(), **counts)
        )
        opted = opted_out_count(conn, tenant_id, new_id)
        audit.append(
            conn,
            event_type="contacts.merged",
            actor=actor or ctx.actor,
            tenant_id=tenant_id,
            subject=f"contact_list:{new_id}",
            payload={"list_id": new_id, "sources": ids, "opted_out": opted, **counts},
        )
    return {**get_list(ctx, tenant_id, new_id, errors=0), "sources": ids, "opted_out": opted}


def _copy(ctx: Context, new_id: int, sources: Sequence[Any], columns: list[str]) -> tuple[int, int]:
    """Copy the sources' contacts in order, a chunk per transaction; the database drops repeated numbers
    (unique ``(list_id, phone_hash)``, as at import)."""
    seq = total = valid = 0
    for src in sources:
        own = json.loads(src.columns)
        where = [own.index(c) if c in own else None for c in columns]
        last = 0
        while True:
            with ctx.db.connect() as conn:
                part = conn.execute(
                    select(contacts)
                    .where(contacts.c.list_id == src.id, contacts.c.seq > last)
                    .order_by(contacts.c.seq)
                    .limit(CHUNK)
                ).all()
            if not part:
                break
            last = part[-1].seq
            chunk = []
            for r in part:
                seq += 1
                values = json.loads(r.vars) if r.vars else []
                mapped = [values[i] if i is not None and i < len(values) else "" for i in where]
                chunk.append(
                    {
                        "list_id": new_id,
                        "seq": seq,
                        "line": seq,
                        "phone_hash": r.phone_hash,
                        "phone_enc": r.phone_enc,
                        "phone_masked": r.phone_masked,
                        "carrier": r.carrier,
                        "vars": dumps(mapped) if mapped else None,
                    }
                )
            with ctx.db.begin() as conn:
                valid += len(_insert_chunk(conn, chunk))
            total += len(chunk)
    return total, valid


__all__ = ["MAX_MERGE", "ListToolError", "export_contacts", "merge_lists", "opted_out_count", "preview_contacts"]
