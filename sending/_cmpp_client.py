"""The CMPP 2.0 SP client adapter (asyncio): CONNECT with MD5 authentication, windowed SUBMIT with
long-message UDH, DELIVER status reports and MO, ACTIVE_TEST keep-alive both ways, TERMINATE.

A lost connection fails every submit still waiting for its SUBMIT_RESP with :class:`SubmitInDoubt`
(the ISMG may have taken it) and reconnects in the background with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random

from sending import _cmpp_protocol as p
from sending._gateway import (
    Gateway,
    GatewayEvents,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
    Receipt,
    SubmitInDoubt,
    SubmitResult,
    TransientGatewayError,
    inbound,
)

log = logging.getLogger(__name__)


def report_status(stat: str) -> tuple[str, str]:
    """(status, carrier_code) of a CMPP report Stat."""
    if stat == "DELIVRD":
        return "delivered", stat
    if stat == "EXPIRED":
        return "expired", stat
    return "failed", stat


class CmppGateway(Gateway):
    kind = "cmpp"

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sp_id: str,
        secret: str,
        *,
        src_id: str = "",
        service_id: str = "",
        window: int = 32,
        active_test_interval: float = 30.0,
        response_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        reconnect: bool = True,
    ) -> None:
        super().__init__(name, window=window)
        self.host, self.port = host, port
        self.sp_id, self.secret = sp_id, secret
        self.src_id = src_id or sp_id
        self.service_id = service_id
        self.active_test_interval = active_test_interval
        self.response_timeout = response_timeout
        self.connect_timeout = connect_timeout
        self.reconnect = reconnect
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[p.Pdu]] = {}
        self._seq = itertools.count(random.randrange(1, 1 << 20))
        self._tasks: set[asyncio.Task[None]] = set()
        self._up = asyncio.Event()
        self._closing = False
        self._last_heard = 0.0
        self._ref = itertools.count(random.randrange(256))
        self.stats = {"active_tests_sent": 0, "active_tests_answered": 0, "connects": 0}

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing() and self._up.is_set()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _next_seq(self) -> int:
        return next(self._seq) % 0x7FFFFFFF + 1

    # -- connection -----------------------------------------------------------------------------------

    async def start(self, events: GatewayEvents) -> None:
        self.events = events
        self._closing = False
        await self._connect()

    async def _connect(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except (OSError, TimeoutError) as e:
            raise GatewayUnavailable(f"cannot connect: {e}", where=self.where) from None
        ts = p.timestamp()
        auth = p.authenticator_source(self.sp_id, self.secret, ts)
        writer.write(p.encode(self._next_seq(), p.Connect(self.sp_id, auth, int(ts))))
        try:
            _, resp = await asyncio.wait_for(p.read_pdu(reader), self.connect_timeout)
        except (asyncio.IncompleteReadError, OSError, TimeoutError, p.CmppError) as e:
            writer.close()
            raise GatewayUnavailable(f"no CONNECT_RESP: {e!r}", where=self.where) from None
        if not isinstance(resp, p.ConnectResp) or resp.status != 0:
            writer.close()
            status = getattr(resp, "status", "?")
            raise GatewayUnavailable(
                f"CONNECT refused, status {status}", where=self.where, carrier_code=f"cmpp:{status}"
            )
        if resp.authenticator != p.authenticator_ismg(0, auth, self.secret):
            writer.close()
            raise GatewayUnavailable("ISMG authenticator does not match the shared secret", where=self.where)
        self._reader, self._writer = reader, writer
        self._last_heard = asyncio.get_running_loop().time()
        self.stats["connects"] += 1
        self._up.set()
        self._spawn(self._read_loop(reader, writer))
        if self.active_test_interval > 0:
            self._spawn(self._keepalive(writer))

    def _lost(self, writer: asyncio.StreamWriter, why: str) -> None:
        if self._writer is not writer:
            return
        self._up.clear()
        self._writer = None
        writer.close()
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(SubmitInDoubt(f"connection lost ({why}) before SUBMIT_RESP", where=self.where))
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
            idle = loop.time() - self._last_heard
            if idle > 3 * self.active_test_interval:
                self._lost(writer, "no answer to ACTIVE_TEST")
                return
            if idle >= self.active_test_interval:
                writer.write(p.encode(self._next_seq(), p.ActiveTest()))
                self.stats["active_tests_sent"] += 1

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        why = "peer closed"
        try:
            while True:
                seq, pdu = await p.read_pdu(reader)
                self._last_heard = loop.time()
                if isinstance(pdu, p.SubmitResp | p.TerminateResp | p.ActiveTestResp):
                    fut = self._pending.pop(seq, None)
                    if fut is not None and not fut.done():
                        fut.set_result(pdu)
                elif isinstance(pdu, p.Deliver):
                    self._spawn(self._deliver(writer, seq, pdu))
                elif isinstance(pdu, p.ActiveTest):
                    self.stats["active_tests_answered"] += 1
                    writer.write(p.encode(seq, p.ActiveTestResp()))
                elif isinstance(pdu, p.Terminate):
                    writer.write(p.encode(seq, p.TerminateResp()))
                    why = "ISMG sent TERMINATE"
                    break
        except (asyncio.IncompleteReadError, ConnectionError, p.CmppError) as e:
            why = repr(e)
        except asyncio.CancelledError:
            why = "closed"
            raise
        finally:
            self._lost(writer, why)

    async def _deliver(self, writer: asyncio.StreamWriter, seq: int, pdu: p.Deliver) -> None:
        try:
            if pdu.registered_delivery == 1:
                report = p.decode_report(pdu.content)
                status, carrier = report_status(report.stat)
                await self.events.on_receipt(
                    Receipt(self.name, str(report.msg_id), report.dest_terminal_id, status, carrier)  # type: ignore[arg-type]
                )
            else:
                raw, _ = p.strip_udh(pdu.tp_udhi, pdu.content)
                await self.events.on_inbound(
                    inbound(pdu.src_terminal_id, p.decode_text(pdu.msg_fmt, raw), self.name, pdu.dest_id)
                )
        except Exception:
            # Not acknowledged: the ISMG sends it again (on this or the next connection). Nothing is lost.
            log.exception("%s: could not hand over a DELIVER; leaving it unacknowledged", self.where)
            return
        if not writer.is_closing():
            writer.write(p.encode(seq, p.DeliverResp(pdu.msg_id, 0)))

    # -- submit ---------------------------------------------------------------------------------------

    async def _submit(self, message: OutboundMessage) -> SubmitResult:
        writer = self._writer
        if writer is None or not self.connected:
            raise GatewayUnavailable("not connected", where=self.where)
        fmt, content = p.encode_text(message.text)
        parts = p.split_content(content, next(self._ref))
        loop = asyncio.get_running_loop()
        futures = []
        for n, (udhi, chunk) in enumerate(parts, start=1):
            seq = self._next_seq()
            fut: asyncio.Future[p.Pdu] = loop.create_future()
            self._pending[seq] = fut
            futures.append(fut)
            pdu = p.Submit(
                dest_terminal_ids=[message.phone],
                content=chunk,
                msg_fmt=fmt,
                src_id=message.sender or self.src_id,
                msg_src=self.sp_id,
                service_id=self.service_id,
                pk_total=len(parts),
                pk_number=n,
                tp_udhi=udhi,
            )
            writer.write(p.encode(seq, pdu))
        if writer.transport.get_write_buffer_size() > 64 * 1024:
            await writer.drain()
        try:
            resps = await asyncio.wait_for(asyncio.gather(*futures), self.response_timeout)
        except TimeoutError:
            raise SubmitInDoubt("no SUBMIT_RESP in time", where=self.where) from None
        ids = []
        for resp in resps:
            assert isinstance(resp, p.SubmitResp)
            if resp.result == p.SUBMIT_RESULT_FLOW_CONTROL:
                raise TransientGatewayError("flow control (result 8)", where=self.where, carrier_code="cmpp:8")
            if resp.result != 0:
                raise PermanentGatewayError(
                    f"SUBMIT refused, result {resp.result}", where=self.where, carrier_code=f"cmpp:{resp.result}"
                )
            ids.append(str(resp.msg_id))
        return SubmitResult(message.id, self.name, tuple(ids))

    async def close(self) -> None:
        self._closing = True
        writer = self._writer
        if writer is not None and not writer.is_closing():
            seq = self._next_seq()
            fut: asyncio.Future[p.Pdu] = asyncio.get_running_loop().create_future()
            self._pending[seq] = fut
            writer.write(p.encode(seq, p.Terminate()))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(fut, 2.0)
            self._lost(writer, "closed")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
