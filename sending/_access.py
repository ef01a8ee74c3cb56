"""What the CMPP and SMPP servers for customers share beyond their PDUs (:class:`AccessServer`): the accounts
(reloadable), each account's connections (its limit), throughput (a token bucket) and window, the parts of long
messages collected until whole, our Msg_Ids, the reports owed for a refused long message, and the keep-alive of
an idle connection.

Our Msg_Ids (CMPP SUBMIT_RESP / DELIVER; the SMPP server's message_id is the same 64-bit number in decimal) are
unique per deployment, however many ``serve`` processes on however many hosts share its SQL database, and
across restarts. The 64 bits are the specification's: month 4, day 5, hour 5, minute 6, second 6, ISMG code 22,
sequence 16; we split the ISMG code's 22 bits into our ``gateway_code`` (its low 10 bits, high part) and this
server's **node number** (12 bits, low part):

    month:4 day:5 hour:5 minute:6 second:6 | gateway_code:10 node:12 | sequence:16

The node number is taken from SQL each time a server starts (the handler's ``take_node``: a new row of
``access_nodes``, its id modulo 4096), so two live servers share one only if 4,096 servers started between
them (Redis is no part of it: losing Redis data cannot hand a live node's number out again). The sequence is one
counter per start, never reset, and at most 65,536 of them are handed out in one wall-clock second: the next
SUBMIT in that second is answered as flow control (CMPP result 8, ESME_RTHROTTLED) rather than repeat an id.
A restart in the same second takes a new node, so it cannot repeat its predecessor's ids either. Like any CMPP
Msg_Id it has no year: ids repeat after a year, and a clock set back can repeat ids of the seconds it revisits
only if exactly a multiple of 65,536 were handed out between the two visits."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from smsguard.core import SmsguardError
from smsguard.sending._cmpp_protocol import make_msg_id

if TYPE_CHECKING:
    from smsguard.sending._cmpp_server import CmppAccount, CustomerSubmit, SubmitHandler

log = logging.getLogger(__name__)

NODE_BITS = 12
"""The low bits of the Msg_Id's 22-bit ISMG code that carry the server's node number (the module docstring)."""
NODES = 1 << NODE_BITS
PER_SECOND = 1 << 16
"""Msg_Ids one server hands out per wall-clock second at most (the 16-bit sequence)."""


class MsgIdsExhausted(SmsguardError):
    """65,536 Msg_Ids were handed out this second: another would repeat one (answered as flow control)."""

    code = "access.msg_ids_exhausted"


def msg_id_code(gateway_code: int, node: int) -> int:
    """The 22-bit ISMG code field of our Msg_Ids: ``gateway_code``'s low 10 bits, then ``node``'s low 12."""
    return ((gateway_code & ((1 << (22 - NODE_BITS)) - 1)) << NODE_BITS) | (node % NODES)


class Bucket:
    """Token bucket: ``rate`` per second, bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.at = rate, rate, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class AccessServer:
    """The bookkeeping of a server for customers' clients; a subclass speaks the protocol (``_handle`` reads a
    connection, ``_probe`` writes its keep-alive PDU, ``_goodbye`` its last words when the server stops).

    ``sessions``: the live connections per account (each with ``account``, ``writer``, ``slots`` and ``live``).
    ``keepalive``: (seconds a connection may be idle before it is probed, 0 = never; seconds to answer)."""

    name = "access"

    def __init__(
        self, accounts: list[CmppAccount], handler: SubmitHandler, *, host: str, port: int, gateway_code: int,
        keepalive: tuple[float, float] = (30.0, 10.0), node: int | None = None,
    ) -> None:
        """``node``: this server's node number in its Msg_Ids; None takes a new one from the handler's
        ``take_node`` at each :meth:`start` (0 with a handler that has none: one server per deployment)."""
        self.accounts = {a.sp_id: a for a in accounts}
        self.handler = handler
        self.host, self.port = host, port
        self.gateway_code = gateway_code
        self.keepalive_every, self.keepalive_timeout = keepalive
        self.sessions: dict[str, list[Any]] = {}
        self._buckets = {a.sp_id: Bucket(a.rate) for a in accounts}
        self._parts: dict[Hashable, dict[int, tuple[int, bytes]]] = {}
        self._counter = itertools.count(1)
        self._refs = itertools.count(1)  # long MO's UDH references: not from _counter, whose span per second is capped
        self._fixed_node = node
        self.node = 0 if node is None else node
        self._code = msg_id_code(gateway_code, self.node)
        self._second: dt.datetime | None = None
        self._issued = 0  # Msg_Ids handed out in self._second
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def set_accounts(self, accounts: list[CmppAccount]) -> None:
        """Replace the accounts (new ones can bind, revoked ones no longer; live binds stay up)."""
        self.accounts = {a.sp_id: a for a in accounts}
        for a in accounts:
            self._buckets.setdefault(a.sp_id, Bucket(a.rate))

    async def start(self) -> int:
        take = getattr(self.handler, "take_node", None)
        if self._fixed_node is None and take is not None:
            self.node = await take(self.name)
            self._counter = itertools.count(1)
            self._code = msg_id_code(self.gateway_code, self.node)
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for sessions in self.sessions.values():
                for s in sessions:
                    self._goodbye(s)
                    s.writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        close = getattr(self.handler, "close", None)
        if close is not None:
            await close()

    async def _handle(self, reader: asyncio.StreamReader, raw: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def _probe(self, session: Any) -> None:
        raise NotImplementedError

    def _goodbye(self, session: Any) -> None:
        """Written to a live session when the server stops (nothing by default)."""

    def _msg_id(self) -> int:
        """A new Msg_Id (the module docstring says why it is unique); :class:`MsgIdsExhausted` after 65,536 in one
        second."""
        now = dt.datetime.now().replace(microsecond=0)
        if now != self._second:
            self._second, self._issued = now, 0
        if self._issued >= PER_SECOND:
            raise MsgIdsExhausted(f"{PER_SECOND} Msg_Ids handed out this second", where="msg_id")
        self._issued += 1
        return make_msg_id(self._code, next(self._counter), now)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _at_limit(self, account: CmppAccount) -> bool:
        return len(self.sessions.get(account.sp_id, [])) >= account.max_connections

    def _throttled(self, sp_id: str) -> bool:
        return not self._buckets[sp_id].take()

    def _opened(self, session: Any) -> None:
        self.sessions.setdefault(session.account.sp_id, []).append(session)

    def _closed(self, session: Any) -> None:
        self.sessions.get(session.account.sp_id, []).remove(session)

    def _watch(self, session: Any) -> None:
        """The keep-alive of a session, from now on."""
        self._spawn(keep_alive(session.live, session.writer, lambda: self._probe(session),
                               every=self.keepalive_every, timeout=self.keepalive_timeout,
                               name=f"{self.name} {session.account.sp_id}", busy=session.slots.locked))

    def _collect(
        self, key: Hashable, number: int, total: int, msg_id: int, raw: bytes
    ) -> list[tuple[int, bytes]] | None:
        """A long message's part (our ``msg_id`` for it, its octets): the parts in order once all ``total`` are in,
        else None. The same segment twice: the first one counts."""
        parts = self._parts.setdefault(key, {})
        parts.setdefault(number, (msg_id, raw))
        if len(parts) < total:
            return None
        del self._parts[key]
        return [parts[n] for n in sorted(parts)]

    async def _refused(self, whole: CustomerSubmit, report: Callable[[int], None]) -> None:
        await owe_rejected(self.handler, whole, report)


async def owe_rejected(handler: Any, whole: Any, report: Callable[[int], None]) -> None:
    """Each part of ``whole`` (a long message whose parts were all answered 0) gets a REJECTD report. A handler
    with ``on_refused`` keeps them in SQL until a bind takes them (they survive a restart); otherwise they go
    through ``report`` (over a bind now, or in the server's memory until one)."""
    keep = getattr(handler, "on_refused", None)
    if keep is not None:
        await keep(whole, "REJECTD")
        return
    for part_id in whole.msg_ids:
        report(part_id)


class Liveness:
    """When the peer was last heard from (any PDU counts: it proves the link carries traffic)."""

    __slots__ = ("heard",)

    def __init__(self) -> None:
        self.heard = time.monotonic()

    def touch(self) -> None:
        self.heard = time.monotonic()


async def keep_alive(
    live: Liveness, writer: Any, probe: Callable[[], None], *, every: float, timeout: float, name: str,
    busy: Callable[[], bool] = lambda: False,
) -> None:
    """After ``every`` seconds without a PDU from the peer, ``probe`` it (enquire_link / CMPP_ACTIVE_TEST); if
    nothing comes back within ``timeout`` seconds, drop the connection (its reader then ends the session, and
    what it was owed stays in SQL). While ``busy`` (its window is full, so we are not reading what it sends) the
    peer is not held to it. ``every`` 0 disables this."""
    if every <= 0:
        return
    while not writer.is_closing():
        if busy():
            live.touch()
        idle = time.monotonic() - live.heard
        if idle < every:
            await asyncio.sleep(every - idle)
            continue
        asked = time.monotonic()
        probe()
        await asyncio.sleep(timeout)
        if live.heard < asked and not writer.is_closing() and not busy():
            log.info("%s: no answer to a keep-alive within %.0f s, dropping the connection", name, timeout)
            writer.transport.abort()  # a dead peer never reads: close() would wait on the unsent buffer
            return
