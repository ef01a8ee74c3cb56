"""Number portability (携号转网): the network a ported number really is on, consulted before the blocks.

Since 2019 a mainland subscriber may keep the number and move to another network, so the block
(``_prefixes.py``) names the network a number was issued on, not the one that carries it. The operators'
portability data (number → current network) is imported with ``smsguard numbers import-portability FILE``
into SQL, the truth: table ``number_portability`` (migration ``phones_0001``), keyed by the number's keyed
hash, so the table holds no number in clear (PII, like every other table).

Look-ups are O(1): a bounded in-process LRU cache (hits and misses, ``ttl`` seconds) in front of one
primary-key read; imports and batches resolve 5,000 numbers per query (``carriers_of_hashes``). A process
sees another process's import after at most ``ttl`` seconds; the process that imports clears its cache.
A ported number is priced and routed by the network it is on now (and is no longer ``virtual``: only the
four networks port).

File: CSV (or tab separated) ``number,carrier`` per line, an optional header, carriers as ``mobile``,
``unicom``, ``telecom``, ``broadnet`` or their names (移动/中国移动/CMCC, 联通/CUCC, 电信/CTCC, 广电/CBN).
A line that is not a mainland mobile or names no known network is rejected with its line number; a
number listed twice keeps the last. Rows are upserted in batches (one transaction each, COPY on
PostgreSQL), so millions of rows stream through in flat memory.
"""

from __future__ import annotations

import codecs
import dataclasses
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, select

from ._canonical import InvalidPhone, Phone, parse_phone
from ._prefixes import CARRIERS
from ._vault import PhoneVault

metadata = MetaData()

number_portability = Table(
    "number_portability",
    metadata,
    Column("phone_hash", String(64), primary_key=True),  # keyed hash of the national number (PhoneVault.hash)
    Column("carrier", String(10), nullable=False),  # mobile / unicom / telecom / broadnet: the network now
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

CARRIER_NAMES: dict[str, str] = {
    **{c: c for c in CARRIERS},
    **dict.fromkeys(("移动", "中国移动", "cmcc", "china mobile"), "mobile"),
    **dict.fromkeys(("联通", "中国联通", "cucc", "china unicom"), "unicom"),
    **dict.fromkeys(("电信", "中国电信", "ctcc", "china telecom"), "telecom"),
    **dict.fromkeys(("广电", "中国广电", "cbn", "china broadnet"), "broadnet"),
}
BATCH = 10_000
_LOOKUP_CHUNK = 1_000  # hashes per IN (…) query


@dataclasses.dataclass(frozen=True, slots=True)
class PortabilityReject:
    line: int
    code: str
    reason: str


@dataclasses.dataclass(slots=True)
class ImportResult:
    lines: int = 0
    imported: int = 0
    rejected: int = 0
    seconds: float = 0.0
    first_rejects: list[PortabilityReject] = dataclasses.field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.imported / self.seconds if self.seconds else 0.0


class Portability:
    """The portability table of one database, with an LRU cache in front of it."""

    def __init__(self, db: Engine, vault: PhoneVault, *, cache_size: int = 200_000, ttl: float = 60.0) -> None:
        self.db = db
        self.vault = vault
        self.ttl = ttl
        self._size = cache_size
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    # -- look-ups ------------------------------------------------------------------------------------
    def carrier_of_hash(self, phone_hash: str) -> str | None:
        """The network a number is ported to, or None if it was never ported (cached either way)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(phone_hash)
            if hit is not None and hit[1] > now:
                self._cache.move_to_end(phone_hash)
                return hit[0]
        with self.db.connect() as conn:
            carrier = conn.execute(
                select(number_portability.c.carrier).where(number_portability.c.phone_hash == phone_hash)
            ).scalar_one_or_none()
        self._remember({phone_hash: carrier}, now)
        return carrier

    def carriers_of_hashes(self, hashes: Iterable[str]) -> dict[str, str]:
        """{hash: network} for the ported ones among ``hashes``: one query per 1,000 (imports, batches)."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, str] = {}
        with self.db.connect() as conn:
            for i in range(0, len(wanted), _LOOKUP_CHUNK):
                part = wanted[i : i + _LOOKUP_CHUNK]
                found.update(
                    conn.execute(
                        select(number_portability.c.phone_hash, number_portability.c.carrier).where(
                            number_portability.c.phone_hash.in_(part)
                        )
                    ).all()
                )
        return found

    def resolve(self, phone: Phone, phone_hash: str | None = None) -> Phone:
        """``phone`` with the network it is on now: the portability table first, then its block."""
        carrier = self.carrier_of_hash(phone_hash or self.vault.hash(phone.e164))
        return phone if carrier is None else ported(phone, carrier)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _remember(self, values: dict[str, str | None], now: float) -> None:
        expires = now + self.ttl
        with self._lock:
            for h, c in values.items():
                self._cache[h] = (c, expires)
                self._cache.move_to_end(h)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)

    # -- import --------------------------------------------------------------------------------------
    def import_file(self, stream: IO[bytes], *, batch: int = BATCH, max_rejects_shown: int = 100) -> ImportResult:
        """Upsert every ``number,carrier`` line of ``stream``; returns counts and the first rejected lines."""
        result = ImportResult()
        started = time.perf_counter()
        pending: dict[str, str] = {}
        for line, cells in _lines(stream):
            result.lines += 1
            try:
                phone_hash, carrier = self._row(cells, line)
            except InvalidPhone as e:
                if line == 1 and cells and not any(ch.isdigit() for ch in cells[0]):
                    result.lines -= 1  # a header line
                    continue
                result.rejected += 1
                if len(result.first_rejects) < max_rejects_shown:
                    result.first_rejects.append(PortabilityReject(line, e.code, e.message))
                continue
            pending[phone_hash] = carrier  # a number listed twice: the last line wins
            if len(pending) >= batch:
                result.imported += self._upsert(pending)
                pending = {}
        if pending:
            result.imported += self._upsert(pending)
        result.seconds = time.perf_counter() - started
        self.clear_cache()
        return result

    def _row(self, cells: list[str], line: int) -> tuple[str, str]:
        if len(cells) < 2:
            raise InvalidPhone("expected number,carrier", where=f"line {line}", code="portability.columns")
        phone = parse_phone(cells[0], where=f"line {line}")
        carrier = CARRIER_NAMES.get(cells[1].strip().lower())
        if carrier is None:
            raise InvalidPhone(f"unknown carrier {cells[1].strip()[:20]!r} (mobile, unicom, telecom, broadnet)",
                               where=f"line {line}", code="portability.carrier")
        return self.vault.hash(phone.e164), carrier

    def _upsert(self, rows: dict[str, str]) -> int:
        now = datetime.now(UTC)
        with self.db.begin() as conn:
            raw = conn.connection.driver_connection
            if conn.dialect.name == "postgresql":  # COPY into a temporary table, then one upsert (≈5× executemany)
                with raw.cursor() as cur:
                    cur.execute("CREATE TEMP TABLE IF NOT EXISTS portability_stage "
                                "(phone_hash varchar(64), carrier varchar(10)) ON COMMIT DELETE ROWS")
                    with cur.copy("COPY portability_stage (phone_hash, carrier) FROM STDIN") as copy:
                        for row in rows.items():
                            copy.write_row(row)
                    cur.execute(
                        "INSERT INTO number_portability (phone_hash, carrier, updated_at) "
                        "SELECT phone_hash, carrier, %s FROM portability_stage "
                        "ON CONFLICT (phone_hash) DO UPDATE SET carrier = EXCLUDED.carrier, "
                        "updated_at = EXCLUDED.updated_at",
                        (now,),
                    )
            else:
                stamp = now.replace(tzinfo=None).isoformat(sep=" ")  # SQLAlchemy's SQLite DateTime format
                cur = raw.cursor()
                cur.executemany(
                    "INSERT INTO number_portability (phone_hash, carrier, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (phone_hash) DO UPDATE SET carrier = excluded.carrier, "
                    "updated_at = excluded.updated_at",
                    [(h, c, stamp) for h, c in rows.items()],
                )
                cur.close()
        return len(rows)


def ported(phone: Phone, carrier: str) -> Phone:
    """``phone`` on ``carrier`` because it was ported there."""
    if carrier == phone.carrier and not phone.virtual:
        return phone
    return dataclasses.replace(phone, carrier=carrier, virtual=False, ported=True)


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    number = 0
    for raw in stream:
        number += 1
        text = decoder.decode(raw).strip()
        if not text:
            continue
        yield number, text.split("\t" if "\t" in text else ",")


_shared: weakref.WeakKeyDictionary[Engine, Portability] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def portability_for(db: Engine, vault: PhoneVault) -> Portability:
    """The process's one ``Portability`` of ``db`` (one cache per database, shared by every caller)."""
    with _shared_lock:
        found = _shared.get(db)
        if found is None or found.vault is not vault:
            found = _shared[db] = Portability(db, vault)
        return found
