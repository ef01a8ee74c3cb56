"""Exports (CSV, JSONL) and per-message trails, streamed in constant memory.

Rows come from a server-side cursor (``yield_per``) and leave as ~64 KB chunks of bytes, so an export of
any size holds one chunk and one fetch batch. Unless the reader may see full numbers, every mainland
mobile number in actor, subject and payload is masked (``138****1234``) and ``phone_encrypted`` is
withheld. CSV cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or CR) get a
leading ``'``. JSONL keeps each payload byte for byte, so an unmasked JSONL export can be re-verified offline.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal

import msgspec
from sqlalchemy import Connection, Engine, Select, or_, select

from smsguard.phones import mask_phones_in

from ._chain import append, ts_text
from ._tables import events

Format = Literal["csv", "jsonl"]
COLUMNS = ("id", "ts", "actor", "tenant_id", "event_type", "subject", "payload", "prev_hash", "hash")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 64 * 1024
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


def neutralize(cell: str) -> str:
    """A cell a spreadsheet would evaluate (``=HYPERLINK(…)``, ``+cmd|…``) becomes inert text."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def mask_payload(payload: str) -> str:
    if "phone_encrypted" in payload:
        obj = _dec.decode(payload)
        if isinstance(obj, dict) and "phone_encrypted" in obj:
            obj["phone_encrypted"] = "[withheld]"
            payload = _enc.encode(dict(sorted(obj.items()))).decode()
    return mask_phones_in(payload)


@dataclass(frozen=True, slots=True)
class EventFilter:
    tenant_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Events with ``since <= ts < until``."""
    types: tuple[str, ...] = ()
    """Exact types, or ``prefix.*`` for every sub-kind (``review.*`` matches ``review`` and ``review.approve``)."""
    batch: str | None = None
    phone_ref: str | None = None
    from_id: int | None = None
    to_id: int | None = None

    def query(self) -> Select:
        q = select(*(events.c[c] for c in COLUMNS)).order_by(events.c.id)
        c = events.c
        if self.tenant_id is not None:
            q = q.where(c.tenant_id == self.tenant_id)
        if self.since is not None:
            q = q.where(c.ts >= self.since)
        if self.until is not None:
            q = q.where(c.ts < self.until)
        if self.types:
            conds = []
            for t in self.types:
                if t.endswith(".*"):
                    conds += [c.event_type == t[:-2], c.event_type.startswith(t[:-1], autoescape=True)]
                else:
                    conds.append(c.event_type == t)
            q = q.where(or_(*conds))
        if self.batch is not None:
            q = q.where(c.batch_ref == self.batch)
        if self.phone_ref is not None:
            q = q.where(c.phone_ref == self.phone_ref)
        if self.from_id is not None:
            q = q.where(c.id >= self.from_id)
        if self.to_id is not None:
            q = q.where(c.id <= self.to_id)
        return q

    def describe(self) -> dict[str, object]:
        out = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        for k in ("since", "until"):
            if k in out:
                out[k] = ts_text(out[k])  # type: ignore[arg-type]
        return out


def _rows(conn: Connection, flt: EventFilter, fetch: int) -> Iterator[Sequence]:
    yield from conn.execution_options(yield_per=fetch).execute(flt.query())


def _csv_chunks(rows: Iterator[Sequence], unmask: bool) -> Iterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for r in rows:
        actor, subject, payload = r.actor, r.subject, r.payload
        if not unmask:
            actor, subject, payload = mask_phones_in(actor), mask_phones_in(subject), mask_payload(payload)
        w.writerow(
            (r.id, ts_text(r.ts), neutralize(actor), "" if r.tenant_id is None else r.tenant_id,
             neutralize(r.event_type), neutralize(subject), neutralize(payload), r.prev_hash, r.hash)
        )
        if buf.tell() >= _CHUNK:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


def _jsonl_chunks(rows: Iterator[Sequence], unmask: bool) -> Iterator[bytes]:
    parts: list[bytes] = []
    size = 0
    for r in rows:
        actor, subject, payload = r.actor, r.subject, r.payload
        if not unmask:
            actor, subject, payload = mask_phones_in(actor), mask_phones_in(subject), mask_payload(payload)
        line = _enc.encode(
            {"id": r.id, "ts": ts_text(r.ts), "actor": actor, "tenant_id": r.tenant_id, "event_type": r.event_type,
             "subject": subject, "payload": msgspec.Raw(payload.encode()), "prev_hash": r.prev_hash, "hash": r.hash}
        ) + b"\n"
        parts.append(line)
        size += len(line)
        if size >= _CHUNK:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def stream_events(db: Engine, flt: EventFilter, fmt: Format, *, unmask: bool = False, fetch: int = 2000
                  ) -> Iterator[bytes]:
    """The export as chunks of bytes. The connection is held until the iterator is exhausted or closed."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"format {fmt!r}: csv or jsonl")
    with db.connect() as conn:
        rows = _rows(conn, flt, fetch)
        yield from (_csv_chunks(rows, unmask) if fmt == "csv" else _jsonl_chunks(rows, unmask))


def record_export(
    db: Engine, *, actor: str, tenant_id: int | None, flt: EventFilter, fmt: str, unmask: bool, what: str = "export"
) -> str:
    """Append (and commit) the ``export`` event an export leaves behind, before any row goes out; returns its
    subject ``export:<id>``."""
    subject = f"export:{uuid.uuid4().hex}"
    with db.begin() as conn:
        append(conn, event_type=what, actor=actor, tenant_id=tenant_id, subject=subject,
               payload={"filter": flt.describe(), "format": fmt, "masked": not unmask})
    return subject
