"""Tamper-evident audit log: an append-only, SHA-256 hash-chained event table in SQL, signed checkpoints,
verification, exports, per-message trails and archives.

The append contract (what other modules call)
---------------------------------------------
``audit.append(conn, *, event_type, actor, tenant_id, subject, payload) -> int``
    Appends ONE event inside the caller's open transaction (``conn`` is a ``sqlalchemy.Connection``; with an
    ORM Session pass ``session.connection()``) and returns its id. Nothing is committed here: the event and
    the caller's own rows (an opt-out, a review decision) commit together or not at all.
``audit.append_many(conn, events: Sequence[AuditEvent]) -> list[int]``
    The same for many events (ids are consecutive, in order); for batched writers.

Appends take the chain lock (the ``audit_head`` row: ``SELECT … FOR UPDATE`` on PostgreSQL, the database
write lock on SQLite) and hold it until the caller's transaction ends, so concurrent writers never fork the
chain. Call ``append`` as the LAST statement before commit and keep that transaction short. Under
PostgreSQL, use the default READ COMMITTED isolation for transactions that append.

Fields:
* ``event_type``: lower-case ``[a-z][a-z0-9_.]*``. In use: ``verdict``, ``review``, ``policy``, ``lexicon``,
  ``model``, ``optout``, ``optin``, ``batch``, ``release``, ``login``, ``export``, ``archive``, ``checkpoint``,
  ``key``. A sub-kind may follow a dot (``review.approve``, ``batch.submitted``); exports filter by the
  exact type or by a prefix (``review.*``).
* ``actor``: who did it: ``key:<12-char prefix>``, ``user:<name>``, ``cli:<os user>``, ``system:<component>``.
* ``tenant_id``: the tenant concerned, or None for service-wide events (policy, lexicon, model).
* ``subject``: a stable string to query by: ``verdict:<id>``, ``batch:<id>``,
  ``recipient:<batch id>:<recipient id>``, ``phone:<keyed hash>``, ``review:<item id>``, ``tenant:<id>``,
  ``policy``, ``lexicon``, ``model``, ``export:<id>``. Never a raw phone number (rejected):
  ``audit.phone_subject(number, key)`` builds ``phone:<hmac>`` with the deployment key from
  ``audit.load_phone_key(settings.data_dir)``.
* ``payload``: a JSON object, stored canonically (sorted keys). Phone numbers appear masked only
  (``audit.mask_phone`` → ``138****1234``); a producer that must keep the full number for authorized export
  puts it, encrypted (issue 7's helper), in ``phone_encrypted``. Conventional keys the trail indexes:
  ``batch_id`` and ``phone_hash`` (also derived from ``batch:``/``recipient:``/``phone:`` subjects).

Each stored row also has ``id`` (1, 2, 3, … with no gaps), ``ts`` (UTC, set under the lock), ``prev_hash`` and
``hash`` = SHA-256 of the compact JSON ``[id, ts, actor, tenant_id, event_type, subject, payload, prev_hash]``
(``ts`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; see ``audit._chain``).

Beyond appending: ``verify`` (first broken event), ``checkpoint`` (Ed25519 over the head), ``stream_events``
(CSV/JSONL, masked unless allowed, formula-safe) with ``record_export`` (each export is itself an event),
``EventFilter(batch=…)``/``EventFilter(phone_ref=phone_hash(…))`` for trails, ``archive`` for retention.
The ``smsguard audit`` command and ``GET /v1/audit/events`` / ``GET /v1/audit/trail`` front them.
"""

from ._archive import ArchiveResult, archive, verify_archive
from ._chain import AuditError, AuditEvent, append, append_many, event_hash, ts_text
from ._export import COLUMNS, EventFilter, mask_payload, neutralize, record_export, stream_events
from ._phone import load_phone_key, mask_phone, mask_phones_in, normalize_phone, phone_hash, phone_subject
from ._signing import Checkpoint, checkpoint, key_id, load_signing_key, public_pem
from ._tables import GENESIS_HASH
from ._verify import VerifyReport, public_key_of, verify

__all__ = [
    "COLUMNS",
    "GENESIS_HASH",
    "ArchiveResult",
    "AuditError",
    "AuditEvent",
    "Checkpoint",
    "EventFilter",
    "VerifyReport",
    "append",
    "append_many",
    "archive",
    "checkpoint",
    "event_hash",
    "key_id",
    "load_phone_key",
    "load_signing_key",
    "mask_payload",
    "mask_phone",
    "mask_phones_in",
    "neutralize",
    "normalize_phone",
    "phone_hash",
    "phone_subject",
    "public_key_of",
    "public_pem",
    "record_export",
    "stream_events",
    "ts_text",
    "verify",
    "verify_archive",
]
