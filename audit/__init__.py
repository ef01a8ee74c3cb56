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

Each row also carries ``mac`` (HMAC-SHA256 of ``hash`` under the chain key derived from the signing key, see
``audit._mac``; ``use_signing_key(key)`` sets it for a process), and the head a MAC too.

Beyond appending: ``verify`` (first broken event), ``checkpoint`` / ``sign_head`` (Ed25519 over the head, also
written outside SQL to ``Anchors``: a directory and/or a witness URL, on a ``Schedule`` kept in SQL), ``stream_events``
(CSV/JSONL, masked unless allowed, formula-safe) with ``record_export`` (each export is itself an event),
``EventFilter(batch=…)``/``EventFilter(phone_ref=phone_hash(…))`` for trails, ``archive`` for retention.
``record_in_force`` keeps the bytes of every policy/lexicon/model version that comes into force (content-addressed),
``replay`` re-screens a stored verdict under them byte for byte, ``shadow_diff`` replays stored verdicts against a
candidate engine. The ``smsguard audit`` command and ``GET /v1/audit/events`` / ``GET /v1/audit/trail`` front them.
"""

# Phone identity lives in smsguard.phones; these names stay for the audit contract above.
from smsguard.phones import load_hash_key as load_phone_key
from smsguard.phones import mask as mask_phone
from smsguard.phones import mask_phones_in, phone_hash, phone_subject

from ._anchor import Anchors, Schedule, anchors_from, schedule_of, sign_head
from ._archive import ArchiveResult, archive, verify_archive
from ._chain import AuditError, AuditEvent, append, append_many, event_hash, lock_head, ts_text
from ._export import COLUMNS, EventFilter, mask_payload, neutralize, record_export, stream_events
from ._mac import chain_key, use_signing_key
from ._policy import AuditPolicy, audit_policy
from ._replay import ReplayResult, replay
from ._shadow import DiffReport, shadow_diff
from ._signing import Checkpoint, checkpoint, key_id, load_signing_key, public_pem
from ._tables import GENESIS_HASH
from ._verdicts import AlsoWrite, insert_verdicts
from ._verify import VerifyReport, public_key_of, verify
from ._versions import VersionMissing, materialize, record_in_force
from ._writer import AuditWriter

__all__ = [
    "COLUMNS",
    "GENESIS_HASH",
    "AlsoWrite",
    "Anchors",
    "ArchiveResult",
    "AuditError",
    "AuditEvent",
    "AuditPolicy",
    "AuditWriter",
    "Checkpoint",
    "DiffReport",
    "EventFilter",
    "ReplayResult",
    "Schedule",
    "VerifyReport",
    "VersionMissing",
    "anchors_from",
    "append",
    "append_many",
    "archive",
    "audit_policy",
    "chain_key",
    "checkpoint",
    "event_hash",
    "insert_verdicts",
    "key_id",
    "load_phone_key",
    "load_signing_key",
    "lock_head",
    "mask_payload",
    "mask_phone",
    "mask_phones_in",
    "materialize",
    "neutralize",
    "phone_hash",
    "phone_subject",
    "public_key_of",
    "public_pem",
    "record_export",
    "record_in_force",
    "replay",
    "schedule_of",
    "shadow_diff",
    "sign_head",
    "stream_events",
    "ts_text",
    "use_signing_key",
    "verify",
    "verify_archive",
]
