"""Checkpoints anchored outside the database, on a schedule that survives restarts.

A checkpoint row in ``audit_checkpoints`` can be deleted by whoever can write SQL. So every checkpoint is
also written, once its row has committed, as a signed JSON file to an anchor directory (mount it from
another host or a WORM bucket) and/or POSTed to a witness URL. ``audit verify --anchors DIR`` then holds
the database to what the anchors saw: a checkpoint the anchors name must still be in SQL, the event it
covers must still have the hash it signed, and the head must not be behind it.

The schedule (policy.yaml ``audit.checkpoint_minutes`` / ``audit.checkpoint_events``) is read from SQL,
not from a process's uptime: a checkpoint is due when the head is ``checkpoint_events`` events past the
newest checkpoint, or that checkpoint is ``checkpoint_minutes`` old and the head moved since. ``serve``
also signs one at start-up, so a restart never opens a window without one.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, select

from ._chain import AuditError, lock_head
from ._policy import AuditPolicy
from ._signing import Checkpoint, sign_checkpoint
from ._tables import checkpoints

log = logging.getLogger("smsguard.audit")
_ENC = msgspec.json.Encoder(order="sorted")
ANCHOR_GLOB = "checkpoint-*.json"


@dataclass(frozen=True, slots=True)
class Anchors:
    """Where checkpoints go besides SQL. Both may be set; neither means SQL only."""

    directory: Path | None = None
    witness_url: str | None = None
    """POSTed one JSON anchor per checkpoint (``Content-Type: application/json``)."""
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a checkpoint is due (policy.yaml ``audit``)."""

    every_events: int
    every_minutes: float


def anchor_document(cp: Checkpoint, keyed_from: int, key: Ed25519PrivateKey) -> dict[str, object]:
    """The anchor for ``cp``: the checkpoint as signed, plus ``keyed_from`` (the first event carrying a
    MAC) under a second signature over the whole document, so the keying start cannot be moved either."""
    doc: dict[str, object] = {**cp.to_dict(), "checkpoint_id": cp.id, "keyed_from": keyed_from}
    del doc["id"]
    doc["anchor_signature"] = key.sign(_ENC.encode(doc)).hex()
    return doc


def check_anchor(doc: dict, pub: Ed25519PublicKey) -> bool:
    body = {k: v for k, v in doc.items() if k != "anchor_signature"}
    try:
        pub.verify(bytes.fromhex(str(doc.get("anchor_signature", ""))), _ENC.encode(body))
    except (InvalidSignature, ValueError):
        return False
    return True


def write_anchor(anchors: Anchors, doc: dict[str, object]) -> None:
    """Write the anchor file (temp + fsync + rename: never half a file) and POST it to the witness.
    Raises AuditError naming what failed; the checkpoint in SQL stands either way."""
    body = json.dumps(doc, sort_keys=True).encode()
    if anchors.directory is not None:
        d = Path(anchors.directory)
        path = d / f"checkpoint-{int(doc['checkpoint_id']):010d}.json"
        tmp = d / f".{path.name}.tmp"
        try:
            d.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            raise AuditError(f"cannot write the anchor file: {e.strerror or e}", where=str(path),
                             code="audit.anchor") from None
    if anchors.witness_url:
        req = urllib.request.Request(anchors.witness_url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=anchors.timeout) as resp:
                if resp.status >= 300:
                    raise AuditError(f"witness answered {resp.status}", where=anchors.witness_url,
                                     code="audit.witness")
        except OSError as e:  # URLError, HTTPError, timeouts
            raise AuditError(f"witness unreachable: {e}", where=anchors.witness_url, code="audit.witness") from None


def sign_head(
    db: Engine,
    key: Ed25519PrivateKey,
    *,
    anchors: Anchors | None = None,
    schedule: Schedule | None = None,
    only_if_moved: bool = False,
) -> Checkpoint | None:
    """Sign the chain head and anchor the checkpoint. With ``schedule``, only when it is due; with
    ``only_if_moved``, not when the newest checkpoint already covers the head. The decision is taken
    under the chain lock, so several processes never sign the same head twice."""
    with db.begin() as conn:
        last_id, last_hash, keyed_from = lock_head(conn)
        if last_id == 0:
            return None
        newest = conn.execute(
            select(checkpoints.c.event_id, checkpoints.c.created_at).order_by(checkpoints.c.id.desc()).limit(1)
        ).first()
        moved = newest is None or newest.event_id < last_id
        if (only_if_moved or schedule is not None) and not moved:
            return None
        if schedule is not None and newest is not None:
            made = newest.created_at.replace(tzinfo=UTC) if newest.created_at.tzinfo is None else newest.created_at
            old = datetime.now(UTC) - made >= timedelta(minutes=schedule.every_minutes)
            if not old and last_id - newest.event_id < schedule.every_events:
                return None
        cp = sign_checkpoint(conn, key, last_id, last_hash)
    if anchors is not None and (anchors.directory is not None or anchors.witness_url):
        write_anchor(anchors, anchor_document(cp, keyed_from, key))
    return cp


def read_anchors(directory: Path) -> Iterator[tuple[Path, dict | None]]:
    """Every anchor file in ``directory`` in checkpoint order; ``None`` for one that is not valid JSON."""
    d = Path(directory)
    if not d.is_dir():
        raise AuditError("not a directory", where=str(d), code="audit.anchors")
    for path in sorted(d.glob(ANCHOR_GLOB)):
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            yield path, None
            continue
        yield path, doc if isinstance(doc, dict) else None



def anchors_from(settings: object) -> Anchors:
    """The anchors a deployment configured (``smsguard.settings.Settings``: anchor_dir, audit_witness_url)."""
    return Anchors(directory=getattr(settings, "anchor_dir", None),
                   witness_url=getattr(settings, "audit_witness_url", None))


def schedule_of(audit_policy: AuditPolicy) -> Schedule:
    """The checkpoint schedule of policy.yaml's ``audit`` section."""
    return Schedule(every_events=audit_policy.checkpoint_events, every_minutes=audit_policy.checkpoint_minutes)
