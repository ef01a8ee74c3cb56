"""A CMPP 2.0 / 3.0 server (the ISMG side) for customers whose software speaks CMPP to us.

The protocol part only: CONNECT authenticated as the specification says (AuthenticatorSource =
MD5(Source_Addr + 9 zero octets + secret + timestamp), answered with AuthenticatorISMG), in the version
the client asks for; per account a connection limit, a window (SUBMITs answered concurrently) and a
throughput (more gets result 8, flow control); CANCEL of a message still queued here (Success_Id 0, no report
follows; 1 otherwise); QUERY answered with the account's counts for the day; ACTIVE_TEST and TERMINATE both
ways (a connection idle for ``active_test_every`` seconds gets our ACTIVE_TEST, and is dropped if nothing comes
back in ``active_test_timeout`` seconds, so a dead client does not hold one of its account's connections). What a
SUBMIT becomes is the :class:`SubmitHandler`'s business (screening, opt-outs, caps, budget, channels); reports and
MO for the customer go out with :meth:`CmppServer.report` / :meth:`CmppServer.mo` over one of the account's
connections, or wait until it connects again.

Our Msg_Ids (SUBMIT_RESP, DELIVER) are unique per deployment across ``serve`` processes, hosts and restarts:
the ISMG code's 22 bits carry ``gateway_code`` (10 bits) and a node number taken from SQL at each start
(12 bits); sending/_access.py's docstring has the layout and its limits.

Result mapping (SUBMIT_RESP.Result; 0-13 are the specification's, 20+ ours, documented for customers):

=========  ==========================================================================
0          accepted (for a long message: each part; a later refusal comes as a report)
8          flow control: the account's throughput was exceeded (or this server's 65,536 Msg_Ids of the
           second are used up, see sending/_access.py), send again later
9          an error on our side (the SUBMIT was not taken): send again later
20         refused by content screening (``block``); no report follows
21         every recipient opted out; no report follows
22         reserved for a frequency cap or quiet hours, never answered at SUBMIT: the release worker applies
           those after it, so a capped message gets a ``REJECTD`` report and quiet hours delay it
23         the account's budget or prepaid balance is exhausted
=========  ==========================================================================

A message held for review is accepted (0); its report says ``DELIVRD`` once approved and sent, or
``REJECTD`` when a reviewer rejects it. A long message is screened whole, once all parts are in; each
part is answered 0 on arrival and, if the whole is refused, each part's report says ``REJECTD`` (whatever
Registered_Delivery said: the parts were answered 0); a handler with ``on_refused`` keeps those reports in SQL
until a bind takes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
from typing import Literal, Protocol

from smsguard.core import SmsguardError
from smsguard.sending import _cmpp_protocol as p
from smsguard.sending._access import AccessServer, Liveness, MsgIdsExhausted
from smsguard.sending._corked import CorkedWriter
from smsguard.sending._long_sms import decode_text, encode_text, split_content, strip_udh

log = logging.getLogger(__name__)

RESULT_FLOW_CONTROL = 8
RESULT_BLOCKED = 20
RESULT_OPTED_OUT = 21
RESULT_CAPPED = 22
RESULT_NO_BUDGET = 23
CONNECT_STATUS_TOO_MANY = 5  # "5~ other errors": here, the account's connection limit


@dataclasses.dataclass(frozen=True, slots=True)
class CmppAccount:
    """A customer's CMPP login: ``sp_id`` (Source_Addr, 6 characters) and shared secret, for ``tenant``."""

    sp_id: str
    secret: str
    tenant: str
    max_connections: int = 2
    window: int = 16
    rate: float = 100.0  # SUBMITs per second per account


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerSubmit:
    """A whole message from a customer (long messages joined): ``msg_ids`` are the ids we gave its parts."""

    account: CmppAccount
    msg_ids: tuple[int, ...]
    phones: tuple[str, ...]
    text: str
    src_id: str
    registered_delivery: int
    protocol: str = "cmpp"  # or "smpp": which server's binds its reports go back over


Decision = Literal["accepted", "blocked", "opted_out", "capped", "no_budget"]
_RESULTS: dict[Decision, int] = {"accepted": 0, "blocked": RESULT_BLOCKED, "opted_out": RESULT_OPTED_OUT,
                                 "capped": RESULT_CAPPED, "no_budget": RESULT_NO_BUDGET}


class SubmitHandler(Protocol):
    async def on_submit(self, submit: CustomerSubmit) -> Decision: ...


class CmppServerError(SmsguardError):
    code = "cmpp_server.error"


@dataclasses.dataclass(slots=True)
class _Session:
    account: CmppAccount
    writer: asyncio.StreamWriter
    version: int
    slots: asyncio.Semaphore
    seq: itertools.count = dataclasses.field(default_factory=lambda: itertools.count(1))
    live: Liveness = dataclasses.field(default_factory=Liveness)

    def send(self, pdu: p.Pdu, sequence: int | None = None) -> None:
        if not self.writer.is_closing():
            self.writer.write(p.encode(next(self.seq) if sequence is None else sequence, pdu, self.version))


class CmppServer(AccessServer):
    name = "CMPP"

    def __init__(
        self, accounts: list[CmppAccount], handler: SubmitHandler, *, host: str = "127.0.0.1", port: int = 7890,
        gateway_code: int = 0x345, max_version: int = p.V30, active_test_every: float = 30.0,
        active_test_timeout: float = 10.0,
    ) -> None:
        """``active_test_every``: seconds a connection may be idle before we send CMPP_ACTIVE_TEST (0: never);
        one not answered within ``active_test_timeout`` seconds is dropped (the specification's C = 3 resends
        of T = 60 s are for carriers' links; a customer's dead socket should not hold a connection slot)."""
        super().__init__(accounts, handler, host=host, port=port, gateway_code=gateway_code,
                         keepalive=(active_test_every, active_test_timeout))
        self.max_version = max_version
        self.sessions: dict[str, list[_Session]] = {}
        # reports / MO kept until the account connects: (pdu, phone, src_id)
        self.waiting: dict[str, list[tuple[p.Deliver | p.StatusReport, str, str]]] = {}

    def _probe(self, session: _Session) -> None:
        session.send(p.ActiveTest())

    def bound(self, account: str) -> bool:
        """Whether the account has a live connection (reports and MO can go out now)."""
        return any(not s.writer.is_closing() for s in self.sessions.get(account, []))

    # -- what the platform sends back to the customer -------------------------------------------------

    def report(self, account: str, msg_id: int, phone: str, stat: str, src_id: str = "", *, keep: bool = True) -> bool:
        """A status report for one part id over the account's bind: True if written to one; else kept in memory
        until it binds again, or with ``keep=False`` (the caller keeps it in SQL) dropped."""
        now = dt.datetime.now().strftime("%y%m%d%H%M")
        report = p.StatusReport(msg_id, stat, now, now, phone)
        return self._deliver(account, report, phone, src_id, keep=keep)

    def mo(self, account: str, phone: str, dest_id: str, text: str, *, keep: bool = True) -> bool:
        if not keep and not self.bound(account):
            return False
        fmt, content = encode_text(text)
        for udhi, chunk in split_content(content, next(self._refs)):
            self._deliver(account, p.Deliver(self._msg_id(), dest_id, phone, chunk, 0, fmt, tp_udhi=udhi))
        return self.bound(account)

    def _deliver(
        self, account: str, pdu: p.Deliver | p.StatusReport, phone: str = "", src_id: str = "", *, keep: bool = True
    ) -> bool:
        sessions = [s for s in self.sessions.get(account, []) if not s.writer.is_closing()]
        if not sessions:
            if keep:
                self.waiting.setdefault(account, []).append((pdu, phone, src_id))
            return False
        session = sessions[0]
        if isinstance(pdu, p.StatusReport):
            content = p.encode_report(pdu, session.version)
            pdu = p.Deliver(self._msg_id(), src_id, phone, content, registered_delivery=1, msg_fmt=0)
        session.send(pdu)
        return True

    # -- connections ----------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, raw: asyncio.StreamWriter) -> None:
        writer: asyncio.StreamWriter = CorkedWriter(raw)  # type: ignore[assignment]
        session: _Session | None = None
        try:
            seq, first = await asyncio.wait_for(p.read_pdu(reader), 10)
            if not isinstance(first, p.Connect):
                return
            session = self._connect(seq, first, writer)
            await writer.drain()
            if session is None:
                return
            for pdu, phone, src_id in self.waiting.pop(session.account.sp_id, []):
                self._deliver(session.account.sp_id, pdu, phone, src_id)
            self._watch(session)
            while True:
                seq, pdu = await p.read_pdu(reader, session.version)
                session.live.touch()
                if isinstance(pdu, p.Submit):
                    await session.slots.acquire()  # the window: stop reading while it is full
                    self._spawn(self._submit(session, seq, pdu))
                elif isinstance(pdu, p.Cancel):
                    await session.slots.acquire()
                    self._spawn(self._cancel(session, seq, pdu))
                elif isinstance(pdu, p.Query):
                    await session.slots.acquire()
                    self._spawn(self._query(session, seq, pdu))
                elif isinstance(pdu, p.ActiveTest):
                    session.send(p.ActiveTestResp(), seq)
                elif isinstance(pdu, p.Terminate):
                    session.send(p.TerminateResp(), seq)
                    await writer.drain()
                    return
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, SmsguardError):
            pass
        finally:
            if session is not None:
                self._closed(session)
            writer.close()

    def _connect(self, seq: int, pdu: p.Connect, writer: asyncio.StreamWriter) -> _Session | None:
        account = self.accounts.get(pdu.source_addr)
        version = p.V30 if min(pdu.version, self.max_version) >= p.V30 else p.V20
        status = 0
        if account is None:
            status = 2
        elif pdu.version >> 4 > self.max_version >> 4:
            status = p.CONNECT_STATUS_VERSION
        elif pdu.authenticator != p.authenticator_source(pdu.source_addr, account.secret, f"{pdu.timestamp:010d}"):
            status = 3
        elif self._at_limit(account):
            status = CONNECT_STATUS_TOO_MANY
        secret = account.secret if account is not None and status != 3 else ""
        auth = p.authenticator_ismg(status, pdu.authenticator, secret, version)
        writer.write(p.encode(seq, p.ConnectResp(status, auth, self.max_version), version))
        if status != 0 or account is None:
            return None
        session = _Session(account, writer, version, asyncio.Semaphore(account.window))
        self._opened(session)
        return session

    async def _submit(self, session: _Session, seq: int, pdu: p.Submit) -> None:
        try:
            if self._throttled(session.account.sp_id):
                session.send(p.SubmitResp(0, RESULT_FLOW_CONTROL), seq)
                return
            msg_id = self._msg_id()
            raw, part = strip_udh(pdu.tp_udhi, pdu.content)
            if part is not None and part[1] > 1:
                session.send(p.SubmitResp(msg_id, 0), seq)  # each part answered on arrival
                whole = self._join(session, pdu, part, msg_id, raw)
                if whole is not None:
                    decision = await self.handler.on_submit(whole)
                    if decision != "accepted":
                        await self._refused(whole, lambda part_id: self.report(
                            session.account.sp_id, part_id, whole.phones[0], "REJECTD", whole.src_id))
                return
            text = decode_text(pdu.msg_fmt, raw)
            submit = CustomerSubmit(session.account, (msg_id,), tuple(pdu.dest_terminal_ids), text, pdu.src_id,
                                    pdu.registered_delivery)
            decision = await self.handler.on_submit(submit)
            result = _RESULTS[decision]
            session.send(p.SubmitResp(msg_id if result == 0 else 0, result), seq)
        except MsgIdsExhausted:
            session.send(p.SubmitResp(0, RESULT_FLOW_CONTROL), seq)
        except Exception:
            log.exception("CMPP SUBMIT from %s failed", session.account.sp_id)
            session.send(p.SubmitResp(0, 9), seq)
        finally:
            session.slots.release()

    async def _cancel(self, session: _Session, seq: int, pdu: p.Cancel) -> None:
        """CMPP_CANCEL: a message still queued here is cancelled (Success_Id 0, no report follows); anything
        else (unknown Msg_Id, handed to a carrier, final, being released right now) is 1."""
        try:
            cancel = getattr(self.handler, "on_cancel", None)
            outcome = "too_late" if cancel is None else await cancel(session.account, pdu.msg_id, "cmpp")
            session.send(p.CancelResp(0 if outcome == "cancelled" else 1), seq)
        except Exception:
            log.exception("CMPP CANCEL from %s failed", session.account.sp_id)
            session.send(p.CancelResp(1), seq)
        finally:
            session.slots.release()

    async def _query(self, session: _Session, seq: int, pdu: p.Query) -> None:
        """CMPP_QUERY: the account's counts for one day (the handler's ``on_stats``); zeros for a day that does not
        parse, for Query_Type 1 (per Service_Id, which we do not record), or with a handler that keeps none."""
        try:
            counts: tuple[int, ...] = (0,) * 8
            stats = getattr(self.handler, "on_stats", None)
            with contextlib.suppress(ValueError):
                day = dt.datetime.strptime(pdu.time, "%Y%m%d").date()
                if stats is not None and pdu.query_type == 0:
                    counts = await stats(session.account, day)
            session.send(p.QueryResp(pdu.time, pdu.query_type, pdu.query_code, counts), seq)  # type: ignore[arg-type]
        except Exception:
            log.exception("CMPP QUERY from %s failed", session.account.sp_id)
            session.send(p.QueryResp(pdu.time, pdu.query_type, pdu.query_code, (0,) * 8), seq)  # type: ignore[arg-type]
        finally:
            session.slots.release()

    def _join(self, session: _Session, pdu: p.Submit, part: tuple[int, int, int], msg_id: int,
              raw: bytes) -> CustomerSubmit | None:
        ref, total, number = part
        ordered = self._collect((session.account.sp_id, tuple(pdu.dest_terminal_ids), ref, total), number, total,
                                msg_id, raw)
        if ordered is None:
            return None
        text = decode_text(pdu.msg_fmt, b"".join(chunk for _, chunk in ordered))
        return CustomerSubmit(session.account, tuple(i for i, _ in ordered), tuple(pdu.dest_terminal_ids), text,
                              pdu.src_id, pdu.registered_delivery)
