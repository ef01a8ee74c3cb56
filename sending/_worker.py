"""The gateway worker: takes messages from the outbox, routes each to a channel, throttles, submits,
retries, fails over, and records the outcome — so that a crash of the worker or of the peer loses
nothing and sends nothing twice.

Per message:

1. pick the first channel of the recipient's carrier route whose circuit allows it;
2. ``begin``: state queued → sending (a message found already *sending* was in flight when a worker
   died: it is **in doubt**, see below; one found submitted or final is only acknowledged);
3. wait for the channel's throttle, submit;
4. accepted → record the gateway ids (and any receipt that raced ahead) → with a journal, commit that
   record to SQL too (``sending/_journal.py``) → ack the outbox entry;
   permanent refusal → outcome failed with the carrier code → ack;
   transient → back to queued, backoff, retry (after ``retry.max_attempts`` on one channel: next channel);
   gateway down → back to queued, next channel at once (the circuit opens);
   in doubt (written, no response) → resolve.

In doubt: the peer may have taken it. A real SMSC/ISMG still sends its receipt (re-sent until we ack
it, also over a new connection), which arrives with a gateway id we never learnt and is parked as an
orphan for (gateway, phone). Resolving adopts that orphan; if none arrives within ``in_doubt_grace``
seconds of being connected to that peer again, the peer never took the message and it is sent again
(``in_doubt="resend"``) or given the outcome ``unknown`` (``in_doubt="hold"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any, Literal

from redis.exceptions import RedisError

from smsguard.sending._circuit import CircuitBreaker
from smsguard.sending._failover import Router
from smsguard.sending._gateway import (
    Gateway,
    GatewayError,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
    SentReport,
    SubmitInDoubt,
    SubmitResult,
)
from smsguard.sending._journal import GroupCommit
from smsguard.sending._retry import RetryPolicy
from smsguard.sending._sealing import SealError
from smsguard.sending._store import MessageStore
from smsguard.sending._throttle import Throttle, Unlimited

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Channel:
    gateway: Gateway
    throttle: Throttle = dataclasses.field(default_factory=Unlimited)
    breaker: CircuitBreaker = dataclasses.field(default_factory=CircuitBreaker)

    @property
    def name(self) -> str:
        return self.gateway.name


class GatewayWorker:
    def __init__(
        self,
        store: MessageStore,
        channels: list[Channel],
        router: Router,
        *,
        consumer: str = "worker-1",
        retry: RetryPolicy | None = None,
        in_doubt_grace: float = 10.0,
        in_doubt: Literal["resend", "hold"] = "resend",
        max_in_flight: int | None = None,
        claim_idle_ms: int = 30_000,
        in_doubt_down_limit: float = 300.0,
        journal: GroupCommit | None = None,
    ) -> None:
        self.seal_errors: list[SealError] = []  # entries this process cannot open (another phone key)
        self.store = store
        self.channels = {c.name: c for c in channels}
        self.router = router
        self.consumer = consumer
        self.retry = retry or RetryPolicy()
        self.in_doubt_grace = in_doubt_grace
        self.in_doubt = in_doubt
        self.in_doubt_down_limit = in_doubt_down_limit
        # Twice the windows keeps every window full; with a journal, the submits waiting for their group commit
        # are done with the peer, so they get room of their own (one commit's worth): else they hold the
        # window's share of the tasks for a SQL round trip and the peers idle (bench/pipeline.py).
        self.max_in_flight = max_in_flight or (
            2 * sum(c.gateway.window for c in channels) + (journal.max_batch if journal is not None else 0)
        )
        self.claim_idle_ms = claim_idle_ms
        self.journal = journal
        self.stats = {"submitted": 0, "rejected": 0, "retries": 0, "failovers": 0, "in_doubt": 0,
                      "resolved": 0, "resent": 0, "skipped": 0, "restored": 0}
        self._tasks: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Event()  # set whenever one of the tasks ends (room for more)
        self._claimed: set[str] = set()
        self._working: dict[str, list[str]] = {}  # message id -> its entries being worked on here, oldest first

    async def start(self) -> None:
        await self.store.ensure_groups()
        for channel in self.channels.values():
            try:
                await channel.gateway.start(self.store)
            except GatewayUnavailable:  # failed over meanwhile; keep trying to bring it up
                channel.breaker.failure(down=True)
                task = asyncio.create_task(self._keep_starting(channel))
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    async def _keep_starting(self, channel: Channel, every: float = 0.2) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await channel.gateway.start(self.store)
                return
            except GatewayUnavailable:
                continue

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for channel in self.channels.values():
            with contextlib.suppress(Exception):
                await channel.gateway.close()
        if self.journal is not None:
            await self.journal.close()

    async def run(self, stop: asyncio.Event | None = None, *, until_idle: bool = False) -> None:
        """Work until ``stop`` is set (or, with ``until_idle``, until the outbox is drained)."""
        self._until_idle = until_idle
        self._freed = asyncio.Event()  # of this loop (a worker may be run again under another one)
        stop = stop or asyncio.Event()
        self._spawn(await self.store.recover(self.consumer))
        last_steal = time.monotonic()
        # Full, claim again only once a handful of tasks ended: one XREADGROUP per freed slot, each after an
        # asyncio.wait over every task in flight, was ~8 % of the gateway thread (py-spy, bench/pipeline.py).
        refill = max(1, min(32, self.max_in_flight // 8))
        while not stop.is_set():
            room = self.max_in_flight - len(self._tasks)
            if room <= 0:
                while self.max_in_flight - len(self._tasks) < refill:
                    self._freed.clear()
                    await self._freed.wait()
                continue
            steal = time.monotonic() - last_steal > self.claim_idle_ms / 2000
            if steal:
                last_steal = time.monotonic()
            try:
                entries = await self.store.claim(
                    self.consumer,
                    min(room, 500),
                    block_ms=20 if self._tasks else 200,
                    min_idle_ms=self.claim_idle_ms if steal else None,
                )
            except RedisError as e:  # Redis restarting: wait for it; what it lost is re-driven from SQL
                log.warning("outbox unreachable (%s); retrying", e)
                await asyncio.sleep(0.5)
                continue
            self._spawn(entries)
            if not entries:
                if until_idle and not self._tasks and await self.store.backlog() == 0:
                    return
                if self._tasks:  # until one ends, or 20 ms
                    self._freed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.02):
                            await self._freed.wait()

    def _spawn(self, entries: list[Any]) -> None:
        for entry_id, fields in entries:
            key = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            if key in self._claimed:  # already being worked on here
                continue
            self._claimed.add(key)
            decoded = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                       for k, v in fields.items()}
            try:
                message = self.store.message(decoded)
            except SealError as e:
                # Sealed under another phone key (issue 16): never sent to a garbled number, left un-acked for a
                # worker that holds that key. Draining (--until-idle) it can never finish: stop with the reason.
                self._claimed.discard(key)
                if getattr(self, "_until_idle", False):
                    raise
                self.seal_errors.append(e)
                log.error("message %s: %s; left in the outbox", decoded.get("id"), e)
                continue
            task = asyncio.create_task(self._handle(key, message))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._freed.set()

    async def _handle(self, entry_id: str, message: OutboundMessage) -> None:
        self._working.setdefault(message.id, []).append(entry_id)
        try:
            await self._deliver(message, entry_id)
            await self.store.ack([entry_id])
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left un-acked: this worker (after a restart) or another one takes it again.
            log.exception("message %s: unexpected error; left in the outbox", message.id)
        finally:
            self._claimed.discard(entry_id)
            entries = self._working.get(message.id, [])
            if entry_id in entries:
                entries.remove(entry_id)
            if not entries:
                self._working.pop(message.id, None)

    def _pick(self, message: OutboundMessage, excluded: set[str]) -> Channel | None:
        for name in self.router.candidates(message.phone):
            channel = self.channels.get(name)
            if channel is None or name in excluded:
                continue
            if channel.gateway.connected and channel.breaker.allow():
                return channel
            if not channel.gateway.connected:
                channel.breaker.failure(down=True)
        return None

    async def _deliver(self, message: OutboundMessage, entry_id: str = "") -> None:
        excluded: set[str] = set()
        tries_here = 0
        rounds = 0
        while True:
            channel = self._pick(message, excluded)
            if channel is None:
                # Every channel of the route is down, open or exhausted: wait and start over.
                excluded.clear()
                rounds += 1
                await asyncio.sleep(self.retry.delay(min(rounds, 6)))
                continue
            state = await self.store.begin(message, channel.name)
            if state == "done":
                self.stats["skipped"] += 1
                return
            if state.startswith("in_doubt:"):
                if await self._settle_in_doubt(message, state.split(":", 1)[1]):
                    return
                continue
            if state.startswith("hold:"):  # re-driven after Redis lost its data: maybe sent before
                if await self._adopt_receipt(message):
                    return
                await asyncio.sleep(min(0.2, int(state.split(":", 1)[1]) / 1000))
                continue
            if state == "redriven" and await self._restore_journaled(message, entry_id):
                return
            await channel.throttle.acquire(1)
            try:
                result = await channel.gateway.submit(message)
            except PermanentGatewayError as e:
                channel.breaker.success()  # the channel works; the message is bad
                await self.store.reject(message, channel.name, e.carrier_code or e.code)
                self.stats["rejected"] += 1
                return
            except SubmitInDoubt:
                channel.breaker.failure(down=True)
                self.stats["in_doubt"] += 1
                if await self._settle_in_doubt(message, channel.name):
                    return
                continue
            except GatewayUnavailable:
                channel.breaker.failure(down=True)
                await self.store.release(message)
                excluded.add(channel.name)
                self.stats["failovers"] += 1
                continue
            except GatewayError:  # transient: throttled, 5xx
                channel.breaker.failure()
                await self.store.release(message)
                tries_here += 1
                if tries_here >= self.retry.max_attempts:
                    excluded.add(channel.name)
                    tries_here = 0
                    self.stats["failovers"] += 1
                    continue
                self.stats["retries"] += 1
                await asyncio.sleep(self.retry.delay(tries_here))
                continue
            channel.breaker.success()
            await self.store.record_submitted(result)
            if self.journal is not None:  # in SQL before the outbox entry is acknowledged
                await self.journal.record(SentReport(result.message_id, result.gateway, result.gateway_ids))
            self.stats["submitted"] += 1
            return

    async def _restore_journaled(self, message: OutboundMessage, entry_id: str) -> bool:
        """A re-driven message at the end of its hold: True when the journal says a peer took it already (then
        it is restored as submitted with its gateway ids, so its receipt still finds it, and not sent again)."""
        if self.journal is None:
            return False
        while self._working.get(message.id, [entry_id])[0] != entry_id:  # an earlier hand-over is still at work
            await asyncio.sleep(0.05)
        found = (await self.journal.sent_before([message.id])).get(message.id)
        if found is None:
            return False
        await self.store.record_submitted(SubmitResult(found.message_id, found.gateway, found.gateway_ids))
        self.stats["restored"] += 1
        return True

    async def _adopt_receipt(self, message: OutboundMessage) -> bool:
        """A held message: settled when one of its route's peers re-sent a receipt for it (an orphan)."""
        for name in self.router.candidates(message.phone):
            if name in self.channels and await self.store.resolve_in_doubt(message, name) != "none":
                self.stats["resolved"] += 1
                return True
        return False

    async def _settle_in_doubt(self, message: OutboundMessage, gateway: str) -> bool:
        """True when settled (adopted a receipt, or held as unknown); False: released, send again.

        The grace counts only time while the channel is connected: the peer's owed receipts can only
        arrive over a connection, and a peer slower to come back than the grace (a loaded machine, the
        reconnect backoff) must not turn every in-doubt submit into a second one. Down for longer than
        ``in_doubt_down_limit`` the message is given up to the ``in_doubt`` policy all the same."""
        channel = self.channels.get(gateway)
        step = min(0.2, self.in_doubt_grace / 5)
        waited = down = 0.0
        while True:
            outcome = await self.store.resolve_in_doubt(message, gateway)
            if outcome != "none":
                self.stats["resolved"] += 1
                return True
            if waited >= self.in_doubt_grace or down >= self.in_doubt_down_limit:
                break
            t0 = time.monotonic()
            await asyncio.sleep(step)
            if channel is None or channel.gateway.connected:
                waited += time.monotonic() - t0
            else:
                down += time.monotonic() - t0
        if self.in_doubt == "hold":
            await self.store.mark_unknown(message, gateway)
            return True
        await self.store.release(message)
        self.stats["resent"] += 1
        return False
