"""Frequency caps per number, signature and kind (policy ``caps``), as Redis counters.

One Redis hash per (tenant, signature, kind, window length, window index): field = the phone's keyed hash,
value = messages handed over in that window. Fixed windows (``floor(t / per)``) keep this to one HINCRBY per
window per recipient; the price is that two windows' edges can let ``2 × max`` through within ``per``
seconds, an accepted approximation. The counters are checked and incremented by the release script in
the same atomic step as the hand-over (``_release``), so a cap cannot be overshot by concurrent releases.

Redis is rebuildable: ``rebuild`` recounts the hand-overs of the longest window from SQL (recipients'
``submitted_at``) when the marker key is missing (a Redis that lost its data).
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from ._common import Context, aware
from ._tables import batches, recipients

HANDED = ("submitted", "delivered", "failed", "expired", "unknown")


@dataclasses.dataclass(frozen=True)
class CapSpec:
    key: str
    max: int
    ttl: int


def bucket_key(ns: str, tenant_id: int, signature: str, kind: str, per: int, bucket: int) -> str:
    return f"{ns}:cap:{tenant_id}:{signature}:{kind}:{per}:{bucket}"


def specs(ctx: Context, tenant_id: int, signature: str, kind: str, at: float | None = None) -> list[CapSpec]:
    """The counters a hand-over of (tenant, signature, kind) at ``at`` checks and increments."""
    at = time.time() if at is None else at
    out = []
    for cap in ctx.policy.batches.caps.for_kind(kind):
        bucket = int(at // cap.per)
        ttl = int((bucket + 1) * cap.per - at) + 60  # the window's rest, plus a margin for clock skew
        out.append(CapSpec(bucket_key(ctx.namespace, tenant_id, signature, kind, cap.per, bucket), cap.max, ttl))
    return out


def rebuild(ctx: Context, *, force: bool = False) -> int:
    """Recount the cap windows from SQL unless the marker says Redis has them. Returns the recipients counted."""
    marker = f"{ctx.namespace}:cap:built"
    if not force and ctx.redis.exists(marker):
        return 0
    longest = max(
        (c.per for k in ("verification", "notification", "marketing") for c in ctx.policy.batches.caps.for_kind(k)),
        default=0,
    )
    if not longest:
        ctx.redis.set(marker, "1")
        return 0
    for key in ctx.redis.scan_iter(match=f"{ctx.namespace}:cap:*:*", count=1000):
        ctx.redis.delete(key)  # recount from zero: what SQL says was handed over is the truth
    since = datetime.now(UTC) - timedelta(seconds=longest)
    counted = 0
    q = (
        select(
            batches.c.tenant_id, batches.c.signature, batches.c.kind, recipients.c.phone_hash, recipients.c.submitted_at
        )
        .select_from(recipients.join(batches, batches.c.id == recipients.c.batch_id))
        .where(recipients.c.submitted_at >= since, recipients.c.status.in_(HANDED))
    )
    counts: dict[tuple[str, str], int] = {}
    ttls: dict[str, int] = {}
    now_ts = time.time()
    with ctx.db.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(q)
        for part in result.partitions():
            for tenant_id, signature, kind, h, at in part:
                ts = aware(at).timestamp()  # type: ignore[union-attr]
                for cap in ctx.policy.batches.caps.for_kind(kind):
                    bucket = int(ts // cap.per)
                    if (bucket + 1) * cap.per <= now_ts:
                        continue  # that window is over
                    key = bucket_key(ctx.namespace, tenant_id, signature, kind, cap.per, bucket)
                    counts[(key, h)] = counts.get((key, h), 0) + 1
                    ttls[key] = int((bucket + 1) * cap.per - now_ts) + 60
                counted += 1
            if len(counts) > 100_000:
                _flush(ctx, counts, ttls)
    _flush(ctx, counts, ttls)
    ctx.redis.set(marker, "1")
    return counted


def _flush(ctx: Context, counts: dict[tuple[str, str], int], ttls: dict[str, int]) -> None:
    pipe: Any = ctx.redis.pipeline(transaction=False)
    for (key, h), n in counts.items():
        pipe.hincrby(key, h, n)
    for key, ttl in ttls.items():
        pipe.expire(key, ttl)
    pipe.execute()
    counts.clear()
