"""Recompute the chain and name the first broken event.

Checked, in id order: ids have no gaps (a deleted row), each ``prev_hash`` is the previous event's
``hash`` (a re-linked or reordered row), each ``hash`` matches the row's content (an edited row), the
trail columns match subject/payload; then that the newest row is the head ``audit_head`` records (a
truncated tail), that the oldest row continues the newest archive, and every signed checkpoint: its
signature, and that the event it names still has the hash it signed.

With the chain key (``chain_key``, derived from the signing key) every event from ``keyed_from`` on must
carry its MAC and the head its MAC: a rewrite made without the key fails at the first event it touched,
a cut tail at the head. With an anchor directory (``anchors``) every anchor must verify, its checkpoint
must still be in SQL, the event it covers must still have that hash, and the head must not be behind it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, func, select, text

from ._anchor import check_anchor, read_anchors
from ._chain import event_hash, refs, ts_text
from ._mac import event_mac, head_mac
from ._signing import KEY_FILE, check_signature, key_id, load_signing_key
from ._tables import GENESIS_HASH, archives, checkpoints, events

_payload = msgspec.json.Decoder()


@dataclass
class VerifyReport:
    ok: bool = True
    checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    broken_event: int | None = None
    """Id of the first event at which the chain breaks (None when intact or only a checkpoint is wrong)."""
    problem: str | None = None
    checkpoints_checked: int = 0
    checkpoint_problems: list[str] = field(default_factory=list)
    anchors_checked: int = 0
    macs_checked: int = 0
    unkeyed: int = 0
    """Events older than ``keyed_from`` (written before the chain was keyed): only SHA-256 vouches for them."""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, event_id: int | None, message: str) -> None:
        if self.ok or self.problem is None:
            self.ok, self.broken_event, self.problem = False, event_id, message

    def to_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def public_key_of(data_dir: Path | None) -> Ed25519PublicKey | None:
    if data_dir is None or not (Path(data_dir) / KEY_FILE).exists():
        return None
    return load_signing_key(data_dir).public_key()


def verify(
    db: Engine,
    *,
    from_id: int | None = None,
    to_id: int | None = None,
    public_key: Ed25519PublicKey | None = None,
    chain_key: bytes | None = None,
    anchors: Path | None = None,
    chunk: int = 20_000,
) -> VerifyReport:
    """Verify events ``from_id..to_id`` (default: all that are in SQL), the checkpoints over them, the MACs
    (with ``chain_key``) and the anchor files in ``anchors``."""
    report = VerifyReport()
    started = time.perf_counter()
    with db.connect() as conn:
        head_id, head_hash, head_mac_, keyed_from = conn.execute(
            text("SELECT last_id, last_hash, mac, keyed_from FROM audit_head WHERE id = 1")).one()
        first = conn.execute(select(func.min(events.c.id))).scalar()
        arcs = conn.execute(select(archives).order_by(archives.c.first_id)).all()
        cps = conn.execute(select(checkpoints).order_by(checkpoints.c.id)).all()
    # Archives must continue one another from the genesis.
    prev_last, prev_hash = 0, GENESIS_HASH
    for a in arcs:
        if a.first_id != prev_last + 1 or a.first_prev_hash != prev_hash:
            report.fail(a.first_id, f"archive {a.id} ({a.path}) does not continue the chain at event {a.first_id}")
            break
        prev_last, prev_hash = a.last_id, a.last_hash
    if first is None:
        _check_head(report, chain_key, head_id, head_hash, head_mac_, keyed_from)
        if anchors is not None:
            _check_anchors(report, _load_anchors(report, anchors, public_key), cps, head_id, keyed_from)
        if head_id != prev_last:
            report.fail(prev_last + 1, f"events {prev_last + 1}..{head_id} are missing (the table is empty)")
        report.seconds = time.perf_counter() - started
        return report
    end = head_id if to_id is None else min(to_id, head_id)
    start = first if from_id is None or from_id <= first else from_id
    if start > end:  # an empty range (e.g. --from after the newest event): nothing to judge but checkpoints
        _check_checkpoints(report, cps, arcs, head_id, public_key)
        report.seconds = time.perf_counter() - started
        return report
    if start == first:
        if first != prev_last + 1:
            where = "no archive holds them" if first > prev_last + 1 else "they overlap an archive"
            report.fail(first, f"events {prev_last + 1}..{first - 1}: {where}")
        expected_prev: str | None = prev_hash
        query_from = start
    else:
        expected_prev = None  # taken from the event before ``start``, which is read but not judged
        query_from = start - 1
    kid = key_id(public_key) if public_key is not None else None
    signed = {  # only checkpoints whose signature holds vouch for an event's hash
        int(c.event_id): c.event_hash for c in cps if c.key_id == kid and check_signature(public_key, c)
    }
    anchored = _load_anchors(report, anchors, public_key) if anchors is not None else []
    signed.update({int(d["event_id"]): str(d["event_hash"]) for _, d in anchored})
    vouched = sorted(signed)
    expect_id = query_from
    with db.connect() as conn:
        result = conn.execution_options(yield_per=chunk).execute(
            select(events).where(events.c.id >= query_from, events.c.id <= end).order_by(events.c.id)
        )
        for r in result:
            if expected_prev is None:  # the anchor before a ranged verify
                if r.id != query_from:
                    report.fail(query_from, f"event {query_from} is missing (deleted?)")
                    break
                expected_prev, expect_id = r.hash, r.id + 1
                continue
            if r.id != expect_id:
                report.fail(r.id, f"events {expect_id}..{r.id - 1} are missing before event {r.id} (deleted?)")
                break
            if r.prev_hash != expected_prev:
                report.fail(r.id, f"event {r.id}: prev_hash does not match the hash of event {r.id - 1} "
                                  "(a row was replaced, re-hashed or reordered)")
                break
            h = event_hash(r.id, ts_text(r.ts), r.actor, r.tenant_id, r.event_type, r.subject, r.payload, r.prev_hash)
            if h != r.hash:
                report.fail(r.id, f"event {r.id}: content does not match its hash (edited or moved)")
                break
            try:
                derived = refs(r.subject, _payload.decode(r.payload))
            except (msgspec.DecodeError, AttributeError):
                derived = (None, None)
            if derived != (r.batch_ref, r.phone_ref):
                report.fail(r.id, f"event {r.id}: batch_ref/phone_ref do not match its subject and payload")
                break
            if chain_key is not None:
                if r.id >= keyed_from:
                    if r.mac != event_mac(chain_key, r.hash):
                        report.fail(r.id, f"event {r.id}: its MAC does not match (written or re-hashed without "
                                          "the chain key)")
                        break
                    report.macs_checked += 1
                elif r.mac is not None and r.mac == event_mac(chain_key, r.hash):
                    report.fail(r.id, f"event {r.id} carries a valid MAC below keyed_from {keyed_from}: "
                                      "audit_head.keyed_from was moved")
                    break
            if r.id < keyed_from:
                report.unkeyed += 1
            if r.id in signed and signed[r.id] != r.hash:
                before = [e for e in vouched if e < r.id and e >= (report.first_id or r.id)]
                since = f"{before[-1] + 1}..{r.id}" if before else f"{report.first_id or r.id}..{r.id}"
                report.fail(r.id, f"event {r.id}: hash differs from the one a signed checkpoint covers: the chain "
                                  f"was rewritten; the first changed event is in {since} (verify with the chain "
                                  "key to name it)")
                break
            report.first_id = report.first_id or r.id
            report.last_id = r.id
            report.checked += 1
            expected_prev, expect_id = r.hash, r.id + 1
        else:
            if expect_id <= end:
                report.fail(expect_id, f"events {expect_id}..{end} are missing (the head says {head_id})")
            elif to_id is None and expected_prev != head_hash:
                report.fail(end, f"event {end}: hash differs from the recorded chain head")
    _check_head(report, chain_key, head_id, head_hash, head_mac_, keyed_from)
    _check_checkpoints(report, cps, arcs, head_id, public_key)
    _check_anchors(report, anchored, cps, head_id, keyed_from)
    report.seconds = time.perf_counter() - started
    return report


def _check_checkpoints(report: VerifyReport, cps: list, arcs: list, head_id: int, pub: Ed25519PublicKey | None) -> None:
    archived = {int(a.last_id): a.last_hash for a in arcs}
    kid = key_id(pub) if pub is not None else None
    for c in cps:
        report.checkpoints_checked += 1
        if pub is None:
            report.checkpoint_problems.append(f"checkpoint {c.id}: no public key to check its signature")
            continue
        if c.key_id != kid or not check_signature(pub, c):
            report.checkpoint_problems.append(f"checkpoint {c.id} (event {c.event_id}): bad signature")
            report.fail(int(c.event_id), f"checkpoint {c.id} over event {c.event_id} has a bad signature")
        elif c.event_id > head_id:
            report.fail(head_id + 1, f"checkpoint {c.id} covers event {c.event_id} beyond the head {head_id}: "
                                     "events were removed from the end")
        elif c.event_id in archived and archived[c.event_id] != c.event_hash:
            report.fail(int(c.event_id), f"archive ending at event {c.event_id} differs from checkpoint {c.id}")
    if pub is None:  # report once, not once per checkpoint
        n = len(report.checkpoint_problems)
        report.checkpoint_problems = [f"{n} checkpoint(s) not checked: no public key"] if n else []


def _check_head(report: VerifyReport, key: bytes | None, head_id: int, head_hash: str, mac: str | None,
                keyed_from: int) -> None:
    if key is None:
        report.notes.append("MACs not checked: no chain key (verify where the signing key is)")
        return
    if head_id < keyed_from and mac is None:
        return  # nothing appended since keying began
    if mac != head_mac(key, head_id, head_hash, keyed_from):
        report.fail(head_id + 1, f"audit_head (event {head_id}) does not carry its MAC: it was rewritten without "
                                 f"the chain key; events after {head_id} were probably cut")


def _load_anchors(report: VerifyReport, directory: Path, pub: Ed25519PublicKey | None) -> list[tuple[Path, dict]]:
    """Anchors whose signature holds; a bad or unsigned one fails the report (someone wrote into the directory)."""
    good: list[tuple[Path, dict]] = []
    for path, doc in read_anchors(directory):
        report.anchors_checked += 1
        if doc is None:
            report.fail(None, f"anchor {path.name}: not a JSON object")
            continue
        if pub is None:
            report.fail(None, "anchors cannot be checked without the public key (--public-key)")
            return []
        try:
            ok = check_anchor(doc, pub) and check_signature(pub, _AnchorRow(doc))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            report.fail(None, f"anchor {path.name}: bad signature")
            continue
        good.append((path, doc))
    if not good and report.anchors_checked == 0:
        report.notes.append(f"no anchor files in {directory}")
    return good


class _AnchorRow:
    """An anchor read as a checkpoints row (what check_signature reads)."""

    def __init__(self, doc: dict) -> None:
        from datetime import datetime

        self.created_at = datetime.strptime(str(doc["created_at"]), "%Y-%m-%dT%H:%M:%S.%fZ")
        self.event_id = int(doc["event_id"])
        self.event_hash = str(doc["event_hash"])
        self.key_id = str(doc["key_id"])
        self.signature = str(doc["signature"])


def _check_anchors(report: VerifyReport, anchored: list[tuple[Path, dict]], cps: list, head_id: int,
                   keyed_from: int) -> None:
    by_id = {int(c.id): c for c in cps}
    for path, doc in anchored:
        cid, eid = int(doc["checkpoint_id"]), int(doc["event_id"])
        if eid > head_id:
            report.fail(head_id + 1, f"anchor {path.name} covers event {eid} beyond the head {head_id}: events "
                                     f"{head_id + 1}..{eid} (at least) were removed from the end")
            continue
        row = by_id.get(cid)
        if row is None:
            report.fail(None, f"anchor {path.name}: checkpoint {cid} (event {eid}) is missing from the database "
                              "(deleted)")
        elif (int(row.event_id), row.event_hash, row.signature) != (eid, doc["event_hash"], doc["signature"]):
            report.fail(None, f"anchor {path.name}: checkpoint {cid} in the database differs from its anchor")
        if int(doc.get("keyed_from", keyed_from)) != keyed_from:
            report.fail(None, f"anchor {path.name}: keyed_from was {doc['keyed_from']}, the database now says "
                              f"{keyed_from}")
