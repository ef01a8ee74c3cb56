"""Shadow mode: replay stored verdict texts against a candidate engine and report every decision that would
change, before the candidate is promoted.

Each stored verdict's request is rebuilt (``audit._replay.stored_request``), identical requests are screened
once, and a verdict whose candidate decision differs from the stored one is a *change*: with the tenant,
the category and reason code that now decide (or that decided before, when the candidate is more lenient),
and the reasons that appeared or went away, with their spans. Changes are grouped by tenant, direction,
category and reason code.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from sqlalchemy import Engine as Database
from sqlalchemy import select

from smsguard.engine import Engine, Message, Verdict, Versions
from smsguard.phones import mask_phones_in

from ._replay import stored_request

_RANK = {"pass": 0, "review": 1, "block": 2}


class _Reason(msgspec.Struct):
    code: str
    category: str
    action: str
    term: str | None = None
    start: int | None = None
    end: int | None = None


class _Stored(msgspec.Struct):
    decision: str
    reasons: list[_Reason]


_decode_stored = msgspec.json.Decoder(_Stored).decode


@dataclass(frozen=True, slots=True)
class Change:
    verdict_id: str
    tenant: str
    created_at: str
    before: str
    after: str
    category: str
    code: str
    text: str
    """The text with phone numbers masked."""
    added: list[dict[str, object]]
    removed: list[dict[str, object]]

    def to_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass
class DiffReport:
    candidate: dict[str, str]
    replayed: int = 0
    screened: int = 0
    """Distinct requests the candidate screened (identical stored requests are screened once)."""
    changed: int = 0
    inexact: int = 0
    """Verdicts whose request could not be rebuilt exactly (a separate signature that is not in the text)."""
    seconds: float = 0.0
    changes: list[Change] = field(default_factory=list)
    groups: Counter = field(default_factory=Counter)

    @property
    def flip_rate(self) -> float:
        return self.changed / self.replayed if self.replayed else 0.0

    @property
    def per_second(self) -> float:
        return self.replayed / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "candidate": self.candidate,
            "replayed": self.replayed,
            "screened": self.screened,
            "changed": self.changed,
            "flip_rate": self.flip_rate,
            "inexact": self.inexact,
            "seconds": round(self.seconds, 3),
            "verdicts_per_second": round(self.per_second, 1),
            "groups": [
                {"tenant": t, "from": a, "to": b, "category": c, "code": code, "count": n}
                for (t, a, b, c, code), n in self.groups.most_common()
            ],
            "changes": [c.to_dict() for c in self.changes],
        }


def _deciding(decision: str, reasons: Sequence[_Reason]) -> _Reason | None:
    return next((r for r in reasons if r.action == decision), None)


def _span(r: _Reason, text: str) -> dict[str, object]:
    return {
        "code": r.code,
        "category": r.category,
        "action": r.action,
        "term": r.term,
        "start": r.start,
        "end": r.end,
        "span": mask_phones_in(text[r.start : r.end]) if r.start is not None else None,
    }


def _key(r: _Reason) -> tuple:
    return (r.code, r.category, r.action, r.start, r.end)


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    tenant: str
    created_at: datetime
    text: str
    verdict: str
    content_hash: str
    versions: Versions


def stored_rows(
    db: Database, *, since: datetime | None = None, newest: int | None = None, chunk: int = 5000
) -> Iterator[_Row]:
    """Stored verdicts created at or after ``since``: oldest first, or the ``newest`` N, newest first."""
    from smsguard.storage._models import Tenant, VerdictRecord

    t = VerdictRecord.__table__
    q = select(
        t.c.id,
        Tenant.name,
        t.c.created_at,
        t.c.text,
        t.c.verdict,
        t.c.content_hash,
        t.c.policy_version,
        t.c.lexicon_version,
        t.c.model_version,
    ).join(Tenant.__table__, Tenant.id == t.c.tenant_id)
    if since is not None:
        q = q.where(t.c.created_at >= since)
    if newest is None:
        q = q.order_by(t.c.created_at, t.c.id)
    else:
        q = q.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(newest)
    known: dict[tuple[str, str, str], Versions] = {}  # a few versions across millions of rows: build each once
    with db.connect() as conn:
        for part in conn.execution_options(yield_per=chunk).execute(q).tuples().partitions():
            for r in part:
                vk = (r[6], r[7], r[8])
                v = known.get(vk)
                if v is None:
                    v = known[vk] = Versions(policy=r[6], lexicon=r[7], model=r[8])
                yield _Row(r[0], r[1], r[2], r[3], r[4], r[5], v)


def shadow_diff(
    db: Database,
    candidate: Engine,
    *,
    since: datetime | None = None,
    newest: int | None = None,
    batch: int = 2048,
    keep: int | None = None,
) -> DiffReport:
    """Replay the stored verdicts since ``since`` (only the ``newest`` N of them, when given) against
    ``candidate``. ``keep`` caps the changes listed (every change is still counted and grouped)."""
    v = candidate.versions
    report = DiffReport(candidate={"policy": v.policy, "lexicon": v.lexicon, "model": v.model})
    started = time.perf_counter()
    pending: list[_Row] = []
    for row in stored_rows(db, since=since, newest=newest):
        pending.append(row)
        if len(pending) >= batch:
            _run(report, candidate, pending, keep)
            pending = []
    if pending:
        _run(report, candidate, pending, keep)
    report.seconds = time.perf_counter() - started
    return report


def _run(report: DiffReport, engine: Engine, rows: list[_Row], keep: int | None) -> None:
    requests = [stored_request(r.text, r.tenant, r.verdict, r.content_hash, r.versions) for r in rows]
    verdicts: dict[tuple, Verdict] = {}
    for content_only in (False, True):
        todo: dict[tuple, Message] = {}
        for q in requests:
            if q.content_only == content_only:
                m = q.message
                todo.setdefault((m.text, m.kind, m.signature, m.tenant, content_only), m)
        if todo:
            for k, verdict in zip(
                todo, engine.screen_many(list(todo.values()), content_only=content_only), strict=True
            ):
                verdicts[k] = verdict
    report.screened += len(verdicts)
    for row, q in zip(rows, requests, strict=True):
        report.replayed += 1
        report.inexact += not q.exact
        m = q.message
        new = verdicts[(m.text, m.kind, m.signature, m.tenant, q.content_only)]
        old = _decode_stored(row.verdict)
        if new.decision == old.decision:
            continue
        new_reasons = [_Reason(r.code, r.category, r.action, r.term, r.start, r.end) for r in new.reasons]
        stricter = _RANK[new.decision] > _RANK[old.decision]
        decider = _deciding(new.decision, new_reasons) if stricter else _deciding(old.decision, old.reasons)
        category, code = (decider.category, decider.code) if decider else ("none", "none")
        report.changed += 1
        report.groups[(row.tenant, old.decision, new.decision, category, code)] += 1
        if keep is not None and len(report.changes) >= keep:
            continue
        before, after = {_key(r) for r in old.reasons}, {_key(r) for r in new_reasons}
        report.changes.append(
            Change(
                verdict_id=row.id,
                tenant=row.tenant,
                created_at=row.created_at.isoformat(),
                before=old.decision,
                after=new.decision,
                category=category,
                code=code,
                text=mask_phones_in(row.text),
                added=[_span(r, row.text) for r in new_reasons if _key(r) not in before],
                removed=[_span(r, row.text) for r in old.reasons if _key(r) not in after],
            )
        )
