"""Contact lists: streaming CSV import (UTF-8 or GBK), one phone column plus variable columns.

The file is read line by line (``_csv_records``: encoding, line ends, bounded records) and written in
chunks (one transaction each), so memory stays flat whatever the size of the list. Every rejected line is
reported with its line number: unreadable CSV, an invalid number (why) or a duplicate (of which line).
Duplicates are found by the database (unique ``(list_id, phone_hash)``, ``ON CONFLICT DO NOTHING``),
not by a set in memory.

Header: a first row naming a phone column (phone, mobile, 手机, 手机号, 手机号码, 号码, 电话, …) makes the
other columns variables, named by their header; without one, the first column is the number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smsguard import audit
from smsguard.core import ConflictError, NotFoundError
from smsguard.phones import InvalidPhone, mask, parse_phone, portability_for

from ._common import BatchError, Context, dumps, now
from ._csv_records import BadRecord, DecodedLines, records
from ._tables import contact_lists, contact_rejects, contacts

PHONE_HEADERS = frozenset(
    {
        "phone",
        "mobile",
        "msisdn",
        "number",
        "tel",
        "telephone",
        "phone_number",
        "手机",
        "手机号",
        "手机号码",
        "号码",
        "电话",
        "电话号码",
        "联系电话",
        "移动电话",
    }
)
CHUNK = 5000


_STAGE_COLUMNS = ("list_id", "seq", "line", "phone_hash", "phone_enc", "phone_masked", "carrier", "vars")


def _insert_chunk(conn: Connection, chunk: list[dict[str, Any]]) -> set[int]:
    """Insert a chunk, skipping numbers already in the list; returns the seqs inserted."""
    if conn.dialect.name != "postgresql":
        return set(conn.execute(_insert_ignoring_duplicates(conn).returning(contacts.c.seq), chunk).scalars())
    # PostgreSQL: COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING (≈5× a multi-row INSERT)
    raw = conn.connection.driver_connection
    cols = ", ".join(_STAGE_COLUMNS)
    with raw.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS contacts_stage (LIKE contacts) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY contacts_stage ({cols}) FROM STDIN") as copy:
            for r in chunk:
                copy.write_row([r[c] for c in _STAGE_COLUMNS])
        cur.execute(
            f"INSERT INTO contacts ({cols}) SELECT {cols} FROM contacts_stage ORDER BY seq "
            "ON CONFLICT (list_id, phone_hash) DO NOTHING RETURNING seq"
        )
        return {row[0] for row in cur.fetchall()}


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(contacts).on_conflict_do_nothing(index_elements=["list_id", "phone_hash"])


def import_contacts(
    ctx: Context, tenant_id: int, name: str, stream: IO[bytes], *, actor: str | None = None, max_errors_shown: int = 100
) -> dict[str, Any]:
    """Import a CSV into a new contact list; returns the list's summary with the first rejected lines."""
    created = now()
    with ctx.db.begin() as conn:
        list_id = conn.execute(
            insert(contact_lists)
            .values(
                tenant_id=tenant_id,
                name=name[:100],
                status="importing",
                encoding="utf-8",
                columns="[]",
                created_at=created,
            )
            .returning(contact_lists.c.id)
        ).scalar_one()
    try:
        lines = DecodedLines(stream)
        counts, columns = _load(ctx, list_id, lines)
    except Exception as e:
        with ctx.db.begin() as conn:
            conn.execute(
                update(contact_lists)
                .where(contact_lists.c.id == list_id)
                .values(status="failed", error=str(e)[:2000], finished_at=now())
            )
        raise
    encoding = lines.encoding
    with ctx.db.begin() as conn:
        conn.execute(
            update(contact_lists)
            .where(contact_lists.c.id == list_id)
            .values(status="ready", encoding=encoding, columns=dumps(columns), finished_at=now(), **counts)
        )
        audit.append(
            conn,
            event_type="contacts.imported",
            actor=actor or ctx.actor,
            tenant_id=tenant_id,
            subject=f"contact_list:{list_id}",
            payload={"list_id": list_id, "encoding": encoding, **counts},
        )
    return get_list(ctx, tenant_id, list_id, errors=max_errors_shown)


def _load(ctx: Context, list_id: int, lines: DecodedLines) -> tuple[dict[str, int], list[str]]:
    vault = ctx.vault
    rows = records(lines)
    first = next(rows, None)
    if first is None:
        raise BatchError("the file has no rows", where="line 1", code="contacts.empty")
    line, header = first
    if isinstance(header, BadRecord):
        raise BatchError(f"the first row cannot be read: {header.reason}", where=f"line {line}", code=header.code)
    cells = [c.strip().lstrip("\ufeff").lower() for c in header]
    phone_col = next((i for i, c in enumerate(cells) if c in PHONE_HEADERS), None)
    pending: list[tuple[int, list[str] | BadRecord]] = []
    if phone_col is None:
        try:
            parse_phone(header[0])
        except InvalidPhone:
            raise BatchError(
                "no phone column: name it phone, mobile, 手机号 or 号码 in a header row, or put "
                "numbers in the first column",
                where=f"line {line}",
                code="contacts.no_phone",
            ) from None
        phone_col, columns = 0, [f"col{i + 1}" for i in range(1, len(header))]
        pending.append(first)  # no header: the first row is data
    else:
        columns = [h.strip().lstrip("\ufeff") for i, h in enumerate(header) if i != phone_col]
        if len(set(columns)) != len(columns):
            raise BatchError("duplicate column names in the header", where=f"line {line}", code="contacts.header")
    counts = {"total": 0, "valid": 0, "invalid": 0, "duplicates": 0}
    seq = 0
    chunk: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal chunk, rejects
        if chunk:  # ported numbers (携号转网) are priced and routed by the network they are on now
            moved = portability_for(ctx.db, vault).carriers_of_hashes(r["phone_hash"] for r in chunk)
            for r in chunk:
                r["carrier"] = moved.get(r["phone_hash"], r["carrier"])
        with ctx.db.begin() as conn:
            if chunk:
                inserted = _insert_chunk(conn, chunk)
                dups = [r for r in chunk if r["seq"] not in inserted]
                if dups:
                    first_lines = dict(
                        conn.execute(
                            select(contacts.c.phone_hash, contacts.c.line).where(
                                contacts.c.list_id == list_id,
                                contacts.c.phone_hash.in_({d["phone_hash"] for d in dups}),
                            )
                        ).all()
                    )
                    for d in dups:
                        rejects.append(
                            {
                                "list_id": list_id,
                                "line": d["line"],
                                "kind": "duplicate",
                                "code": "contacts.duplicate",
                                "value": d["phone_masked"],
                                "phone_enc": d["phone_enc"],
                                "reason": f"duplicate of line {first_lines.get(d['phone_hash'], '?')}",
                            }
                        )
                    counts["duplicates"] += len(dups)
                    counts["valid"] -= len(dups)
            if rejects:
                conn.execute(insert(contact_rejects), rejects)
        chunk, rejects = [], []

    ncols = len(header)
    for line, row in _iter_with(pending, rows):
        counts["total"] += 1
        if isinstance(row, BadRecord):
            counts["invalid"] += 1
            rejects.append({"list_id": list_id, "line": line, "kind": "invalid", "code": row.code,
                            "reason": row.reason, "value": "", "phone_enc": None})
            if len(rejects) >= CHUNK:
                flush()
            continue
        raw = row[phone_col] if phone_col < len(row) else ""
        try:
            phone = parse_phone(raw)
        except InvalidPhone as e:
            counts["invalid"] += 1
            rejects.append(
                {
                    "list_id": list_id,
                    "line": line,
                    "kind": "invalid",
                    "code": e.code,
                    "reason": e.message,
                    "value": mask(raw),
                    # as uploaded, for the tenant's own report; encrypted like every number we keep
                    "phone_enc": vault.encrypt(raw.strip()[:64]) if raw.strip() else None,
                }
            )
        else:
            if len(row) != ncols:
                counts["invalid"] += 1
                rejects.append(
                    {
                        "list_id": list_id,
                        "line": line,
                        "kind": "invalid",
                        "code": "contacts.columns",
                        "reason": f"{len(row)} columns, the header has {ncols}",
                        "value": phone.masked,
                        "phone_enc": vault.encrypt(raw.strip()[:64]),
                    }
                )
            else:
                seq += 1
                counts["valid"] += 1
                values = [c.strip() for i, c in enumerate(row) if i != phone_col]
                chunk.append(
                    {
                        "list_id": list_id,
                        "seq": seq,
                        "line": line,
                        "phone_hash": vault.hash(phone.e164),
                        "phone_enc": vault.encrypt(phone.e164),
                        "phone_masked": phone.masked,
                        "carrier": phone.price_key,
                        "vars": dumps(values) if values else None,
                    }
                )
        if len(chunk) >= CHUNK or len(rejects) >= CHUNK:
            flush()
    flush()
    return counts, columns


def _iter_with(
    first: list[tuple[int, list[str] | BadRecord]], rest: Iterator[tuple[int, list[str] | BadRecord]]
) -> Iterator[tuple[int, list[str] | BadRecord]]:
    yield from first
    yield from rest


def get_list(ctx: Context, tenant_id: int, list_id: int, *, errors: int = 100, full: bool = False) -> dict[str, Any]:
    """A list's summary with its first ``errors`` rejected lines, their values masked; ``full`` shows the values
    as uploaded (the owning tenant's own error report: it uploaded them and must see what to fix)."""
    with ctx.db.connect() as conn:
        row = conn.execute(
            select(contact_lists).where(contact_lists.c.id == list_id, contact_lists.c.tenant_id == tenant_id)
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"no contact list {list_id}", where="path list_id", code="contacts.not_found")
        rejected = (
            conn.execute(
                select(contact_rejects)
                .where(contact_rejects.c.list_id == list_id)
                .order_by(contact_rejects.c.line)
                .limit(errors)
            ).all()
            if errors
            else []
        )
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "encoding": row.encoding,
        "columns": json.loads(row.columns),
        "total": row.total,
        "valid": row.valid,
        "invalid": row.invalid,
        "duplicates": row.duplicates,
        "error": row.error,
        "rejected": [
            {"line": r.line, "kind": r.kind, "code": r.code, "reason": r.reason,
             "value": _shown(ctx, r) if full else r.value}
            for r in rejected
        ],
    }


def _shown(ctx: Context, r: Any) -> str:
    if r.phone_enc is None:
        return r.value
    value = ctx.vault.decrypt(r.phone_enc)
    return value[3:] if r.kind == "duplicate" and value.startswith("+86") else value  # a duplicate keeps E.164


def rejects_csv(ctx: Context, tenant_id: int, list_id: int, *, full: bool = False) -> Iterator[str]:
    """The per-line report of a list's rejected rows, as CSV text chunks (values as uploaded with ``full``)."""
    get_list(ctx, tenant_id, list_id, errors=0)
    yield "line,kind,code,reason,value\r\n"
    with ctx.db.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            select(contact_rejects).where(contact_rejects.c.list_id == list_id).order_by(contact_rejects.c.line)
        )
        for part in result.partitions():
            yield "".join(
                _csv_line([r.line, r.kind, r.code, r.reason, _shown(ctx, r) if full else r.value]) for r in part
            )


def delete_list(ctx: Context, tenant_id: int, list_id: int, *, actor: str | None = None) -> None:
    """Delete a contact list (a failed upload, or one no longer wanted) with its contacts and error report.
    A list a batch was built from stays: the batch's report and audit trail point at it."""
    from ._tables import batches

    with ctx.db.begin() as conn:
        row = conn.execute(
            select(contact_lists.c.id, contact_lists.c.status, contact_lists.c.name).where(
                contact_lists.c.id == list_id, contact_lists.c.tenant_id == tenant_id
            )
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"no contact list {list_id}", where="path list_id", code="contacts.not_found")
        used = conn.execute(select(batches.c.id).where(batches.c.list_id == list_id).limit(1)).scalar()
        if used is not None:
            raise ConflictError(f"batch #{used} was sent to this list: it is kept with the batch's records",
                                where="path list_id", code="contacts.in_use")
        conn.execute(delete(contact_rejects).where(contact_rejects.c.list_id == list_id))
        conn.execute(delete(contacts).where(contacts.c.list_id == list_id))
        conn.execute(delete(contact_lists).where(contact_lists.c.id == list_id))
        audit.append(
            conn,
            event_type="contacts.deleted",
            actor=actor or ctx.actor,
            tenant_id=tenant_id,
            subject=f"contact_list:{list_id}",
            payload={"list_id": list_id, "status": row.status},
        )


def _csv_line(values: list[Any]) -> str:
    out = []
    for v in values:
        s = "" if v is None else str(v)
        if s[:1] in ("=", "+", "-", "@"):  # spreadsheet formula injection
            s = "'" + s
        if any(c in s for c in ',"\r\n'):
            s = '"' + s.replace('"', '""') + '"'
        out.append(s)
    return ",".join(out) + "\r\n"
