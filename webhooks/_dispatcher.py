"""The webhook dispatcher (``smsguard serve`` role ``webhooks``): claims due deliveries from SQL, POSTs them
signed, records every attempt, retries with exponential backoff and jitter, dead-letters after the window.

Several dispatchers (threads, processes, hosts) share the work through SQL alone: a delivery is taken by
setting its lease in one conditional ``UPDATE … RETURNING`` (on PostgreSQL after ``SELECT … FOR UPDATE SKIP
LOCKED``, so dispatchers skip each other's rows instead of waiting). A dispatcher that dies leaves leases that
expire, and the deliveries are sent again: at least once, with the same event id.

Order per subject: a delivery is claimable only when no earlier delivery of the same subject to the same
endpoint is still pending (in flight or waiting for its retry), so a later event waits until the earlier one
is delivered or dead.

Isolation between tenants: each endpoint has its own HTTP connection pool, concurrency limit and timeout, and
claims are made per endpoint up to its free slots, so a slow or hanging receiver only ever holds its own
slots: it never takes the claims, connections or time of another endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, and_, case, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import aliased

from smsguard import audit

from ._endpoints import _aware, signing_secrets
from ._signing import ATTEMPT_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signature_header
from ._tables import attempts, deliveries, endpoints, events

log = logging.getLogger("smsguard.webhooks")

USER_AGENT = "smsguard-webhooks/1"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt n failed → the next one after ``min(max_delay, base·2^(n-1))``, scaled by a jitter in
    [0.5, 1.0) so receivers that failed together are not retried together; given up (dead) when the next
    attempt would fall after ``window`` seconds since the delivery was created."""

    base: float = 10.0
    max_delay: float = 3600.0
    window: float = 24 * 3600.0

    def delay(self, attempt: int, jitter: float) -> float:
        return min(self.max_delay, self.base * 2.0 ** (attempt - 1)) * (0.5 + 0.5 * jitter)


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed delivery, with what sending it needs."""

    id: int
    attempt: int
    created_at: datetime
    endpoint_id: int
    url: str
    secrets: tuple[str, ...]
    timeout: float
    max_concurrency: int
    event_id: str
    event_type: str
    body: bytes


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id (fe80::1%eth0) is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def blocked_address(url: str) -> str | None:
    """Why a delivery to ``url`` must not be made: the host resolves to an address that is not public
    (loopback, private, link-local such as cloud metadata at 169.254.169.254, shared, reserved, multicast), or does
    not resolve. None when every address it resolves to is public. The check runs before every attempt, so a
    name that later points inward is caught too (a name re-pointed between this lookup and the connection is not:
    see the README)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        return f"cannot resolve {host}: {e.strerror or e}"
    for *_, sockaddr in infos:
        if not _public(str(sockaddr[0])):
            return f"blocked address: {host} resolves to {sockaddr[0]}, not a public address"
    return None


def _now() -> datetime:
    return datetime.now(UTC)


def event_body(row: Any) -> bytes:
    """The JSON a receiver gets; the same bytes on every attempt (only the signature's timestamp changes)."""
    created = _aware(row.created_at)
    return (
        b'{"id":' + json.dumps(row.event_id).encode() + b',"type":' + json.dumps(row.event_type).encode()
        + b',"created_at":' + json.dumps(created.isoformat() if created else None).encode()
        + b',"subject":' + json.dumps(row.subject, ensure_ascii=False).encode()
        + b',"data":' + row.payload.encode() + b"}"
    )


class Dispatcher:
    def __init__(
        self,
        db: Engine,
        *,
        worker_id: str,
        retry: RetryPolicy | None = None,
        lease: float = 120.0,
        poll: float = 0.5,
        jitter: Callable[[], float] = random.random,
        allow_private: bool = False,
    ) -> None:
        self.db = db
        self.worker_id = worker_id[:64]
        self.retry = retry or RetryPolicy()
        self.lease = lease  # longer than any endpoint's timeout (the API caps those at 60 s)
        self.poll = poll
        self.jitter = jitter
        self.allow_private = allow_private  # settings.webhook_allow_private: receivers on this host / network
        self.inflight: dict[int, int] = defaultdict(int)
        self._clients: dict[int, tuple[tuple[int, float], httpx.AsyncClient]] = {}
        self.sent = 0  # attempts made (for the bench and metrics)

    # -- claiming ------------------------------------------------------------------------------------------
    def claim(self, inflight: dict[int, int] | None = None, limit: int = 100) -> list[Job]:
        """Take due deliveries, per endpoint up to its free concurrency slots. One transaction."""
        inflight = inflight or {}
        t = _now()
        d = deliveries
        free_lease = or_(d.c.lease_until.is_(None), d.c.lease_until < t)
        due = and_(d.c.status == "pending", d.c.next_at <= t, free_lease)
        # the head of its subject: the oldest pending delivery of (endpoint, subject). A correlated min() is one
        # index probe per candidate (ix_webhook_deliveries_order); NOT EXISTS let PostgreSQL pick a quadratic
        # anti-join on fresh tables.
        other = aliased(deliveries)
        head = (select(func.min(other.c.id)).where(other.c.endpoint_id == d.c.endpoint_id,
                                                   other.c.subject == d.c.subject, other.c.status == "pending")
                .scalar_subquery())
        pg = self.db.dialect.name == "postgresql"
        jobs: list[Job] = []
        with self.db.begin() as conn:
            # endpoints (a small table) with something due, skipping those whose slots are all taken here: a
            # slow endpoint's backlog is never scanned while it cannot take more
            busy = [ep for ep, n in inflight.items() if n > 0]
            eps = conn.execute(
                select(endpoints.c.id, endpoints.c.max_concurrency).where(
                    exists().where(d.c.endpoint_id == endpoints.c.id, due),
                    endpoints.c.enabled.is_(True), endpoints.c.deleted_at.is_(None),
                    *([endpoints.c.id.not_in(busy) | (endpoints.c.max_concurrency > _inflight_of(busy, inflight))]
                      if busy else []),
                )
            ).all()
            ids: list[int] = []
            for ep in eps:
                free = min(ep.max_concurrency - inflight.get(ep.id, 0), limit - len(ids))
                if free <= 0:
                    continue
                q = select(d.c.id).where(d.c.endpoint_id == ep.id, due, d.c.id == head).order_by(d.c.id).limit(free)
                if pg:
                    q = q.with_for_update(skip_locked=True, of=d)
                ids += conn.execute(q).scalars().all()
            if not ids:
                return []
            got = conn.execute(
                update(d).where(d.c.id.in_(ids), d.c.status == "pending", free_lease)
                .values(lease_owner=self.worker_id, lease_until=t + timedelta(seconds=self.lease))
                .returning(d.c.id)
            ).scalars().all()
            if not got:
                return []
            rows = conn.execute(
                select(d.c.id, d.c.attempts, d.c.created_at, d.c.endpoint_id, endpoints.c.url, endpoints.c.secret,
                       endpoints.c.old_secret, endpoints.c.old_secret_until, endpoints.c.timeout,
                       endpoints.c.max_concurrency,
                       events.c.event_id, events.c.event_type, events.c.subject, events.c.payload,
                       events.c.created_at.label("event_created_at"))
                .join(endpoints, endpoints.c.id == d.c.endpoint_id)
                .join(events, events.c.seq == d.c.event_seq)
                .where(d.c.id.in_(got)).order_by(d.c.id)
            ).all()
        for r in rows:
            body = event_body(_EventView(r.event_id, r.event_type, r.event_created_at, r.subject, r.payload))
            jobs.append(Job(id=r.id, attempt=r.attempts + 1, created_at=_aware(r.created_at) or t,
                            endpoint_id=r.endpoint_id, url=r.url, secrets=tuple(signing_secrets(r, t)),
                            timeout=r.timeout, max_concurrency=r.max_concurrency, event_id=r.event_id,
                            event_type=r.event_type, body=body))
        return jobs

    # -- recording -------------------------------------------------------------------------------------------
    def record(self, job: Job, status_code: int | None, error: str | None, latency_ms: float) -> str:
        """Write the attempt and the delivery's new state; returns it (delivered | pending | dead | lost)."""
        return self.record_many([(job, status_code, error, latency_ms)])[0]

    def record_many(self, results: list[tuple[Job, int | None, str | None, float]]) -> list[str]:
        """``record`` for many attempts in ONE transaction (a commit per answer would cap throughput)."""
        with self.db.begin() as conn:
            return [self._record(conn, *r) for r in results]

    def _record(self, conn: Any, job: Job, status_code: int | None, error: str | None, latency_ms: float) -> str:
        t = _now()
        ok = status_code is not None and 200 <= status_code < 300
        d = deliveries
        last = {"attempts": job.attempt, "last_status": status_code, "last_error": error,
                "last_latency_ms": latency_ms, "lease_owner": None, "lease_until": None}
        conn.execute(insert(attempts).values(delivery_id=job.id, attempt=job.attempt, at=t,
                                             status_code=status_code, latency_ms=latency_ms, error=error,
                                             dispatcher=self.worker_id))
        if ok:  # delivered, whoever holds the lease now: no further copy is needed
            changed = conn.execute(update(d).where(d.c.id == job.id, d.c.status == "pending")
                                   .values(status="delivered", finished_at=t, **last)).rowcount
            return "delivered" if changed else "lost"
        mine = and_(d.c.id == job.id, d.c.status == "pending", d.c.lease_owner == self.worker_id)
        next_at = t + timedelta(seconds=self.retry.delay(job.attempt, self.jitter()))
        if (next_at - job.created_at).total_seconds() <= self.retry.window:
            changed = conn.execute(update(d).where(mine).values(next_at=next_at, **last)).rowcount
            return "pending" if changed else "lost"
        changed = conn.execute(update(d).where(mine).values(status="dead", finished_at=t, **last)).rowcount
        if not changed:
            return "lost"
        tenant_id = conn.execute(select(d.c.tenant_id).where(d.c.id == job.id)).scalar_one()
        audit.append(conn, event_type="webhook.dead_lettered", actor=f"system:{self.worker_id}",
                     tenant_id=tenant_id, subject=f"event:{job.event_id}",
                     payload={"delivery_id": job.id, "webhook_id": job.endpoint_id, "event_id": job.event_id,
                              "attempts": job.attempt, "last_status_code": status_code, "last_error": error})
        return "dead"

    # -- sending ---------------------------------------------------------------------------------------------
    def _client(self, job: Job) -> httpx.AsyncClient:
        concurrency = job.max_concurrency
        key = (concurrency, job.timeout)
        found = self._clients.get(job.endpoint_id)
        if found is not None and found[0] == key:
            return found[1]
        if found is not None:  # settings changed: the old pool closes when its requests are done
            asyncio.get_running_loop().create_task(found[1].aclose())
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=httpx.Timeout(job.timeout), follow_redirects=False, headers={"User-Agent": USER_AGENT},
        )
        self._clients[job.endpoint_id] = (key, client)
        return client

    async def send(self, job: Job) -> tuple[int | None, str | None, float]:
        client = self._client(job)
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(job.secrets, ts, job.body),
            EVENT_ID_HEADER: job.event_id,
            EVENT_TYPE_HEADER: job.event_type,
            ATTEMPT_HEADER: str(job.attempt),
        }
        t0 = time.perf_counter()
        code: int | None = None
        error: str | None = None
        if not self.allow_private and (error := await blocked_address(job.url)) is not None:
            self.sent += 1  # an attempt that failed before any request: retried and dead-lettered like others
            return None, error, (time.perf_counter() - t0) * 1000
        try:  # the whole exchange is bounded too: httpx's timeout is per read, a trickling reply could outlast it
            r = await asyncio.wait_for(client.post(job.url, content=job.body, headers=headers), job.timeout)
            code = r.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        except (TimeoutError, httpx.TimeoutException):
            error = f"timeout after {job.timeout:g} s"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"[:500] or type(e).__name__
        self.sent += 1
        return code, error, (time.perf_counter() - t0) * 1000

    # -- the loop ----------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, grace: float = 5.0) -> None:
        """Until ``stop`` is set: claim, send, record. On stop, in-flight requests get ``grace`` seconds; the
        rest keep their leases, which expire, and are sent again by a dispatcher."""
        tasks: set[asyncio.Task[None]] = set()
        kick = asyncio.Event()
        loop = asyncio.get_running_loop()
        # SQL gets threads of its own: the loop's default executor also resolves every endpoint's host name, and
        # a tenant whose name server never answers (5 s per lookup, times its concurrency) would otherwise hold
        # the claims and records of every other tenant behind it. Lookups get a wider pool for the same reason.
        sql = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhooks-sql")
        loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="webhooks-dns"))
        results: asyncio.Queue[tuple[Job, int | None, str | None, float, asyncio.Future[str]]] = asyncio.Queue()

        async def one(job: Job) -> None:
            try:
                code, error, latency = await self.send(job)
                done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                await results.put((job, code, error, latency, done))
                if await done == "dead":
                    log.warning("webhook delivery %s (event %s) dead after %d attempts: %s", job.id, job.event_id,
                                job.attempt, error)
            except Exception:  # SQL down while recording: the lease expires and the delivery is retried
                log.exception("webhook delivery %s: recording failed", job.id)
            finally:
                self.inflight[job.endpoint_id] -= 1
                kick.set()

        async def recorder() -> None:  # what finished meanwhile, in one transaction
            while True:
                batch = [await results.get()]
                while not results.empty() and len(batch) < 500:
                    batch.append(results.get_nowait())
                try:
                    outcomes = await loop.run_in_executor(sql, self.record_many, [b[:4] for b in batch])
                except Exception as e:
                    for b in batch:
                        b[4].set_exception(e)
                else:
                    for b, outcome in zip(batch, outcomes, strict=True):
                        b[4].set_result(outcome)

        writer = asyncio.create_task(recorder())
        try:
            while not stop.is_set():
                kick.clear()
                try:
                    jobs = await loop.run_in_executor(sql, self.claim, dict(self.inflight))
                except Exception:  # SQL unavailable: try again after a pause
                    log.exception("webhook claim failed")
                    jobs = []
                for job in jobs:
                    self.inflight[job.endpoint_id] += 1
                    task = asyncio.create_task(one(job))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if jobs:
                    continue
                waiters = [asyncio.ensure_future(kick.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()
        finally:
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=grace)
                for task in pending:
                    task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.gather(*pending, return_exceptions=True)
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer
            for _, client in self._clients.values():
                await client.aclose()
            self._clients.clear()
            sql.shutdown(wait=False)


def _inflight_of(busy: list[int], inflight: dict[int, int]) -> Any:
    """SQL for "requests this dispatcher has in flight to endpoints.id" (0 for an endpoint not in ``busy``)."""
    return case({ep: literal(inflight[ep]) for ep in busy}, value=endpoints.c.id, else_=literal(0))


@dataclass(frozen=True, slots=True)
class _EventView:
    event_id: str
    event_type: str
    created_at: datetime
    subject: str
    payload: str
