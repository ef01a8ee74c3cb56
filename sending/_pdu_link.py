"""What CMPP, SMGP and SGIP clients share: one TCP link that logs in, matches responses to requests by
sequence number (in any order), keeps itself alive, reconnects, and hands DELIVERs upward before
acknowledging them.

A protocol adapter subclasses :class:`PduLink` and supplies the codec (``_encode`` / ``_read``), the
login exchange, which PDUs are responses, how one message becomes submit PDUs and what a submit
response means. A lost connection fails every submit still waiting for its response with
:class:`SubmitInDoubt` (the peer may have taken it) and reconnects in the background with backoff.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from smsguard.core import SmsguardError
from smsguard.sending._corked import CorkedWriter
from smsguard.sending._gateway import (
    Gateway,
    GatewayEvents,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
    Receipt,
    ResponseDeadlines,
    SubmitInDoubt,
    SubmitResult,
    TransientGatewayError,
    inbound,
    responses,
)
from smsguard.sending._long_sms import Reassembler

log = logging.getLogger(__name__)

Pdu = Any  # each protocol module has its own union of PDU dataclasses
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class PduLink(Gateway):
    """One logged-in TCP connection to a carrier gateway, with a window of submits in flight."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        window: int = 32,
        active_test_interval: float = 30.0,
        response_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        reconnect: bool = True,
        throttle_pause: float = 1.0,
    ) -> None:
        super().__init__(name, window=window, throttle_pause=throttle_pause)
        self.host, self.port = host, port
        self.active_test_interval = active_test_interval
        self.response_timeout = response_timeout
        self.connect_timeout = connect_timeout
        self.reconnect = reconnect
        self.reassembler = Reassembler()
        self.part_retries = 5  # a throttled part of a partly accepted long message is re-sent alone
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[Hashable, asyncio.Future[Pdu]] = {}
        self._deadlines = ResponseDeadlines(lambda: SubmitInDoubt("no submit response in time", where=self.where))
        self._seq = itertools.count(random.randrange(1, 1 << 20))
        self._ref = itertools.count(random.randrange(256))
        self._tasks: set[asyncio.Task[None]] = set()
        self._up = asyncio.Event()
        self._closing = False
        self._last_heard = 0.0
        self.stats = {"active_tests_sent": 0, "active_tests_answered": 0, "connects": 0, "unmatched": 0}

    # -- what a protocol supplies -----------------------------------------------------------------------

    @abc.abstractmethod
    def _encode(self, sequence: Hashable, pdu: Pdu) -> bytes: ...

    @abc.abstractmethod
    async def _read(self, reader: asyncio.StreamReader) -> tuple[Hashable, Pdu]:
        """One PDU: (sequence, pdu). Raises ``IncompleteReadError`` at EOF or a :class:`SmsguardError`."""

    @abc.abstractmethod
    async def _login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Streams | None:
        """Authenticate on a fresh connection; raise :class:`GatewayUnavailable` when refused. Returns the
        streams of a NEW connection when the login had to start over on one (CMPP's version fallback)."""

    @abc.abstractmethod
    def _is_response(self, pdu: Pdu) -> bool: ...

    @abc.abstractmethod
    async def _on_request(self, writer: asyncio.StreamWriter, sequence: Hashable, pdu: Pdu) -> bool:
        """Handle a request from the peer (DELIVER, ACTIVE_TEST, TERMINATE). False ends the connection."""

    @abc.abstractmethod
    def _submit_pdus(self, message: OutboundMessage) -> list[Pdu]: ...

    @abc.abstractmethod
    def _accepted_id(self, sequence: Hashable, response: Pdu) -> str:
        """The gateway message id of an accepted part, or raise the right :class:`GatewayError`."""

    def _keepalive_pdu(self) -> Pdu | None:
        return None

    def _logout_pdu(self) -> Pdu | None:
        return None

    def _next_seq(self) -> Hashable:
        return next(self._seq) % 0x7FFFFFFF + 1

    # -- connection -----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing() and self._up.is_set()

    def _send(self, writer: asyncio.StreamWriter, data: bytes, *, now: bool = False) -> None:
        """Write ``data`` coalesced with the rest of this loop turn (``sending/_corked.py``); ``now`` for a
        PDU that ends the connection."""
        if isinstance(writer, CorkedWriter):
            (writer.write_now if now else writer.write)(data)
        elif not writer.is_closing():
            writer.write(data)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self, events: GatewayEvents) -> None:
        self.events = events
        self._closing = False
        await self._connect()

    async def _open(self) -> Streams:
        try:
            return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.connect_timeout)
        except (OSError, TimeoutError) as e:
            raise GatewayUnavailable(f"cannot connect: {e}", where=self.where) from None

    async def _connect(self) -> None:
        reader, writer = await self._open()
        try:
            reopened = await self._login(reader, writer)
        except BaseException:
            writer.close()
            raise
        if reopened is not None:
            reader, writer = reopened
        writer = CorkedWriter(writer)  # type: ignore[assignment]
        self._writer = writer
        self._last_heard = asyncio.get_running_loop().time()
        self.stats["connects"] += 1
        self._up.set()
        self._spawn(self._read_loop(reader, writer))
        if self.active_test_interval > 0:
            self._spawn(self._keepalive(writer))

    async def _read_login_response(self, reader: asyncio.StreamReader) -> Pdu:
        try:
            _, resp = await asyncio.wait_for(self._read(reader), self.connect_timeout)
        except (asyncio.IncompleteReadError, OSError, TimeoutError, SmsguardError) as e:
            raise GatewayUnavailable(f"no login response: {e!r}", where=self.where) from None
        return resp

    def _lost(self, writer: asyncio.StreamWriter, why: str) -> None:
        if self._writer is not writer:
            return
        self._up.clear()
        self._writer = None
        writer.close()
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(SubmitInDoubt(f"connection lost ({why}) before the response", where=self.where))
        if self.reconnect and not self._closing:
            self._spawn(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.05
        while not self._closing and not self.connected:
            try:
                await self._connect()
                log.info("%s reconnected", self.where)
                return
            except GatewayUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _keepalive(self, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while self._writer is writer and not writer.is_closing():
            await asyncio.sleep(self.active_test_interval)
            await self._flush_partial_mo()
            idle = loop.time() - self._last_heard
            if idle > 3 * self.active_test_interval:
                self._lost(writer, "no answer to the keep-alive")
                return
            pdu = self._keepalive_pdu()
            if idle >= self.active_test_interval and pdu is not None:
                self._send(writer, self._encode(self._next_seq(), pdu))
                self.stats["active_tests_sent"] += 1

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        why = "peer closed"
        try:
            while True:
                seq, pdu = await self._read(reader)
                self._last_heard = loop.time()
                if self._is_response(pdu):
                    fut = self._pending.pop(seq, None)
                    if fut is not None and not fut.done():
                        fut.set_result(pdu)
                    else:
                        self.stats["unmatched"] += 1  # a late answer to a timed-out request
                elif not await self._on_request(writer, seq, pdu):
                    why = "peer ended the session"
                    break
        except (asyncio.IncompleteReadError, ConnectionError, SmsguardError) as e:
            why = repr(e)
        except asyncio.CancelledError:
            why = "closed"
            raise
        finally:
            self._lost(writer, why)

    # -- events from the peer ---------------------------------------------------------------------------

    async def _hand_over(self, event: Callable[[], Awaitable[None]], ack: Callable[[], None]) -> None:
        """Run ``event`` (make a receipt or MO durable) and only then ``ack`` the PDU to the peer."""
        try:
            await event()
        except Exception:
            # Not acknowledged: the peer sends it again (on this or the next connection). Nothing is lost.
            log.exception("%s: could not hand over a DELIVER; leaving it unacknowledged", self.where)
            return
        ack()

    async def _receipt(self, gateway_id: str, phone: str, status: str, carrier_code: str) -> None:
        await self.events.on_receipt(Receipt(self.name, gateway_id, phone, status, carrier_code))  # type: ignore[arg-type]

    async def _mo(self, sender: str, receiver: str, fmt: int, udhi: int, content: bytes) -> None:
        """An MO part: reported once its message is whole (long replies come in parts)."""
        text = self.reassembler.add(sender, receiver, fmt, udhi, content)
        if text is not None:
            await self.events.on_inbound(inbound(sender, text, self.name, receiver))
        await self._flush_partial_mo()  # also here: SGIP has no keep-alive loop to do it

    async def _flush_partial_mo(self) -> None:
        for sender, receiver, text in self.reassembler.expired():
            with contextlib.suppress(Exception):
                await self.events.on_inbound(inbound(sender, text, self.name, receiver))

    # -- submit ---------------------------------------------------------------------------------------

    def _next_ref(self) -> int:
        return next(self._ref) & 0xFF

    async def _exchange(self, pdus: list[Pdu]) -> list[tuple[Hashable, Pdu]]:
        """Write ``pdus`` (the window holds their slot) and await every response: [(sequence, response)]."""
        writer = self._writer
        if writer is None or not self.connected:
            raise GatewayUnavailable("not connected", where=self.where)
        loop = asyncio.get_running_loop()
        futures, sequences = [], []
        for pdu in pdus:
            seq = self._next_seq()
            fut: asyncio.Future[Pdu] = loop.create_future()
            self._pending[seq] = fut
            self._deadlines.add(self._pending, seq, fut, self.response_timeout)  # SubmitInDoubt when unanswered
            futures.append(fut)
            sequences.append(seq)
            self._send(writer, self._encode(seq, pdu))
        if writer.transport.get_write_buffer_size() > 64 * 1024:
            await writer.drain()
        return list(zip(sequences, await responses(futures), strict=True))

    async def _submit(self, message: OutboundMessage) -> SubmitResult:
        pdus = self._submit_pdus(message)
        ids: list[str | None] = [None] * len(pdus)
        todo = list(range(len(pdus)))
        throttled: TransientGatewayError | None = None
        for attempt in range(self.part_retries + 1):
            throttled = None
            answers = await self._exchange([pdus[i] for i in todo])
            still = []
            for i, (seq, resp) in zip(todo, answers, strict=True):
                try:
                    ids[i] = self._accepted_id(seq, resp)
                except TransientGatewayError as e:
                    throttled = e
                    still.append(i)
            if throttled is None:
                return SubmitResult(message.id, self.name, tuple(i for i in ids if i is not None))
            if len(still) == len(pdus):
                raise throttled  # nothing taken: the whole message may be retried, later or elsewhere
            # Some parts are taken: re-sending the whole message would send those twice, so only the
            # throttled parts go again, once the channel's pause is over.
            todo = still
            if attempt < self.part_retries:
                await asyncio.sleep(max(self._paused_until - time.monotonic(), 0.05))
        raise PermanentGatewayError(
            f"{len(todo)} of {len(pdus)} parts still throttled after {self.part_retries} retries; the other parts "
            "were accepted, so the message is not sent again", where=self.where,
            carrier_code=throttled.carrier_code if throttled else None,
        )

    async def close(self) -> None:
        self._closing = True
        writer = self._writer
        logout = self._logout_pdu()
        if writer is not None and not writer.is_closing() and logout is not None:
            seq = self._next_seq()
            fut: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
            self._pending[seq] = fut
            self._send(writer, self._encode(seq, logout), now=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(fut, 2.0)
        if writer is not None:
            self._lost(writer, "closed")
        self._deadlines.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
