"""The gateway interface every adapter implements, the events it emits and the errors it raises.

An adapter turns one :class:`OutboundMessage` into one or more protocol submits (long messages are
split into parts) and reports each protocol event upward through a :class:`GatewayEvents` object:

* :meth:`GatewayEvents.on_receipt` — a delivery receipt for one *gateway* message id (one part);
* :meth:`GatewayEvents.on_inbound` — an MO message from a handset.

The adapter awaits those callbacks *before* acknowledging the PDU to the peer, so an event is never
acknowledged before whoever consumes it has made it durable (the peer re-sends what we did not ack).
Mapping gateway ids back to our message ids and aggregating parts is the job of the store
(``sending/_store.py``), which then emits :class:`DeliveryReport` to an :class:`EventSink`.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import heapq
import itertools
import re
import time
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any, Literal, Protocol

from smsguard.core import ConfigError, ExternalError

ReportStatus = Literal["delivered", "failed", "expired", "rejected", "unknown"]


# -- errors ---------------------------------------------------------------------------------------------


class GatewayError(ExternalError):
    """A gateway could not take a message. ``carrier_code`` is the peer's own code (``smpp:0x58``)."""

    code = "gateway.error"
    transient = True

    def __init__(
        self, message: str, *, where: str | None = None, code: str | None = None, carrier_code: str | None = None
    ) -> None:
        super().__init__(message, where=where, code=code)
        self.carrier_code = carrier_code

    def to_dict(self) -> dict[str, str | None]:
        return {**super().to_dict(), "carrier_code": self.carrier_code}


class TransientGatewayError(GatewayError):
    """Worth retrying later on the same gateway: throttled (ESME_RTHROTTLED, CMPP result 8, HTTP 429) or 5xx."""

    code = "gateway.transient"


class PermanentGatewayError(GatewayError):
    """The peer refused this message for good (bad number, bad content): never retried."""

    code = "gateway.rejected"
    transient = False


class GatewayUnavailable(TransientGatewayError):
    """The gateway is not connected (down, auth failed, disconnected): try another channel."""

    code = "gateway.unavailable"


class SubmitInDoubt(GatewayUnavailable):
    """The submit was written to the peer but the connection dropped before its response.

    The peer may or may not have accepted it, so re-sending blindly could send it twice; the worker
    resolves it from the peer's receipts instead (see ``sending/_worker.py``).
    """

    code = "gateway.in_doubt"


class GatewayConfigError(ConfigError):
    """A gateway or channel configuration is invalid; ``where`` names the key."""

    code = "gateway.config"


# -- messages and events --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to one recipient. ``id`` is ours and unique; ``sender`` is the extension/source number."""

    id: str
    phone: str
    text: str
    sender: str = ""
    tenant: str = ""

    def to_fields(self) -> dict[str, str]:
        return {"id": self.id, "phone": self.phone, "text": self.text, "sender": self.sender, "tenant": self.tenant}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> OutboundMessage:
        return cls(
            id=fields["id"],
            phone=fields["phone"],
            text=fields["text"],
            sender=fields.get("sender", ""),
            tenant=fields.get("tenant", ""),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitResult:
    """The peer accepted every part; ``gateway_ids`` has one id per part, in part order."""

    message_id: str
    gateway: str
    gateway_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt as the peer sent it: about ONE gateway message id (one part)."""

    gateway: str
    gateway_id: str
    phone: str
    status: ReportStatus
    carrier_code: str
    received_at: float = dataclasses.field(default_factory=time.time)


@dataclasses.dataclass(frozen=True, slots=True)
class DeliveryReport:
    """The outcome of one of OUR messages (all parts), mapped back from gateway ids."""

    message_id: str
    phone: str
    status: ReportStatus
    carrier_code: str
    gateway: str
    gateway_ids: tuple[str, ...] = ()
    at: float = dataclasses.field(default_factory=time.time)


@dataclasses.dataclass(frozen=True, slots=True)
class SentReport:
    """The gateway took one of OUR messages (every part): recorded durably, a Redis that loses the send
    state is re-driven without sending it again (``sending/_outbox.py``)."""

    message_id: str
    gateway: str
    gateway_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class InboundMessage:
    """An MO (mobile-originated) message: a handset replied to ``to`` (our sender number)."""

    phone: str
    text: str
    gateway: str
    to: str = ""
    opt_out: bool = False
    received_at: float = dataclasses.field(default_factory=time.time)


# MO keywords that opt a number out (DESIGN.md): the whole reply, ignoring case, spaces and punctuation.
OPT_OUT_KEYWORDS = frozenset({"td", "t", "n", "r", "退订", "取消", "stop", "unsubscribe", "退", "qx"})
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def is_opt_out(text: str) -> bool:
    """True when an MO reply is an opt-out instruction (TD, T, N, R, 退订, 取消, STOP, UNSUBSCRIBE…)."""
    return _NOISE.sub("", text).lower() in OPT_OUT_KEYWORDS


def inbound(phone: str, text: str, gateway: str, to: str = "") -> InboundMessage:
    return InboundMessage(phone=phone, text=text, gateway=gateway, to=to, opt_out=is_opt_out(text))


# -- the seams ------------------------------------------------------------------------------------------


class GatewayEvents(Protocol):
    """What an adapter reports to. Each call returns once the event is durable (or raises: then not acked)."""

    async def on_receipt(self, receipt: Receipt) -> None: ...

    async def on_inbound(self, message: InboundMessage) -> None: ...


class EventSink(Protocol):
    """Where mapped outcomes go: recipient status and opt-out handling (issue 7 plugs its storage in here)."""

    async def on_report(self, report: DeliveryReport) -> None: ...

    async def on_inbound(self, message: InboundMessage) -> None: ...

    async def on_sent(self, report: SentReport) -> None: ...


class _NotStarted:
    """The events of a gateway before ``start``: refuses, so nothing is acknowledged to the peer."""

    async def on_receipt(self, receipt: Receipt) -> None:
        raise GatewayUnavailable("receipt before start(): not acknowledged")

    async def on_inbound(self, message: InboundMessage) -> None:
        raise GatewayUnavailable("MO before start(): not acknowledged")


class ResponseDeadlines:
    """The timeout of every response awaited on one connection, without a timer each.

    ``asyncio.wait_for`` per submit made a timer, a waiter and callbacks for every PDU (py-spy: ~5 % of the
    gateway thread at ~1,000 msgs/s). Here each awaited response goes on one heap; a single task wakes at the
    earliest deadline still open, drops the answered ones and fails an unanswered one with ``error()`` (after
    taking it out of ``pending``, so a late answer matches nothing, as after a ``wait_for`` timeout)."""

    def __init__(self, error: Callable[[], BaseException]) -> None:
        self.error = error
        self._heap: list[tuple[float, int, Hashable, asyncio.Future[Any], MutableMapping[Any, Any]]] = []
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._wake_at = 0.0

    def add(self, pending: MutableMapping[Any, Any], key: Hashable, fut: asyncio.Future[Any], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        heapq.heappush(self._heap, (deadline, next(self._order), key, fut, pending))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._sweep())
        elif deadline < self._wake_at:  # a shorter timeout than the one slept on (its setting changed)
            self._task.cancel()
            self._task = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        while heap:
            now = loop.time()
            while heap and (heap[0][3].done() or heap[0][0] <= now):
                _, _, key, fut, pending = heapq.heappop(heap)
                if not fut.done():
                    if pending.get(key) is fut:
                        del pending[key]
                    fut.set_exception(self.error())
            if heap:
                self._wake_at = heap[0][0]
                await asyncio.sleep(self._wake_at - now)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._heap.clear()


def _retrieved(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


async def responses(futures: list[asyncio.Future[Any]]) -> list[Any]:
    """Every future's result in order (their timeouts are :class:`ResponseDeadlines`'); on the first error, the
    others' outcomes are consumed (no "exception never retrieved") and that error is raised, as ``gather`` does."""
    if len(futures) == 1:
        return [await futures[0]]
    try:
        return [await f for f in futures]
    except BaseException:
        for f in futures:
            f.add_done_callback(_retrieved)
        raise


class Gateway(abc.ABC):
    """One connection (or pool) to one SMS channel.

    ``window`` bounds the submits in flight (written, response not yet read). ``submit`` may be called
    concurrently; it returns when the peer accepted every part, or raises a :class:`GatewayError`.
    """

    kind: str = "gateway"

    def __init__(self, name: str, *, window: int = 32, throttle_pause: float = 1.0) -> None:
        if window < 1:
            raise GatewayConfigError("window must be at least 1", where=f"gateways.{name}.window")
        self.name = name
        self.window = window
        self.throttle_pause = throttle_pause
        self.events: GatewayEvents = _NotStarted()
        self._slots = asyncio.Semaphore(window)
        self._paused_until = 0.0
        self.pauses = 0

    @property
    def where(self) -> str:
        return f"gateway {self.name} ({self.kind})"

    @abc.abstractmethod
    async def start(self, events: GatewayEvents) -> None:
        """Connect (and bind/log in); receipts and MO flow to ``events`` from now on."""

    @abc.abstractmethod
    async def _submit(self, message: OutboundMessage) -> SubmitResult:
        """Send every part of ``message``; called with a window slot held."""

    async def submit(self, message: OutboundMessage) -> SubmitResult:
        async with self._slots:
            while (wait := self._paused_until - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            return await self._submit(message)

    def throttled(self, carrier_code: str) -> TransientGatewayError:
        """The peer said "too fast" (CMPP result 8, ESME_RTHROTTLED, ...): hold the WHOLE channel for
        ``throttle_pause`` seconds, so the other submits in the window wait instead of each being
        refused and re-queued (a retry storm), and return the error for this one."""
        until = time.monotonic() + self.throttle_pause
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1
        return TransientGatewayError("throttled by the peer", where=self.where, carrier_code=carrier_code)

    @property
    def paused(self) -> bool:
        return self._paused_until > time.monotonic()

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """True while the gateway can take submits."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Log out politely (unbind / TERMINATE) and release the connection."""

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
