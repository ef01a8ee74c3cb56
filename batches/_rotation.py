"""Re-encrypting every stored phone number under the current phone key (``smsguard keys rotate``).

The vault's first key encrypts and all its keys decrypt, so a rotation is: configure the new key first and the
old one after it (``SMSGUARD_PHONE_KEY=2:NEW,1:OLD``), run this, then drop the old key. It walks each table in
primary-key order, a chunk per transaction; a row is updated only if its ciphertext is still the one read
(compare-and-set), so it may run beside the service. Interrupted, it is simply run again: rows already under
the current key are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, Table, select, tuple_, update

from smsguard.phones import PhoneVault

from ._tables import contact_rejects, contacts, optouts, recipients

TABLES: tuple[Table, ...] = (contacts, optouts, recipients, contact_rejects)


@dataclass
class RotationReport:
    key_id: int
    rotated: dict[str, int] = field(default_factory=dict)
    already: dict[str, int] = field(default_factory=dict)

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())


def rotate_phone_keys(
    db: Engine, vault: PhoneVault, *, chunk: int = 2000, max_chunks: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> RotationReport:
    """Re-encrypt, under ``vault``'s current key, every ``phone_enc`` that is not; ``max_chunks`` stops early
    (tests of resuming)."""
    report = RotationReport(vault.key_id)
    chunks = 0
    for table in TABLES:
        pk = list(table.primary_key.columns)
        rotated = already = 0
        after: tuple | None = None
        while max_chunks is None or chunks < max_chunks:
            q = select(*pk, table.c.phone_enc).where(table.c.phone_enc.is_not(None)).order_by(*pk).limit(chunk)
            if after is not None:
                q = q.where(tuple_(*pk) > tuple_(*after))
            with db.begin() as conn:
                rows = conn.execute(q).all()
                if not rows:
                    break
                for row in rows:
                    blob = bytes(row.phone_enc)
                    if vault.current(blob):
                        already += 1
                        continue
                    fresh = vault.encrypt(vault.decrypt(blob))
                    where = [c == row._mapping[c.name] for c in pk]
                    rotated += conn.execute(
                        update(table).where(*where, table.c.phone_enc == blob).values(phone_enc=fresh)
                    ).rowcount
            chunks += 1
            after = tuple(row._mapping[c.name] for c in pk)
            if progress is not None:
                progress(table.name, rotated)
        report.rotated[table.name] = rotated
        report.already[table.name] = already
    return report
