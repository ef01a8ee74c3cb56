"""An asyncio CMPP 2.0 / 3.0 ISMG simulator: the real peer of the CMPP adapter in tests and benchmarks.

    python -m sending_peers.cmpp_simulator --port 7890 --account 901234:secret [--journal FILE]
        [--active-test 30] [--max-version 0x30] [--script receipt_first,reorder=8,...]

It authenticates CONNECT (MD5), speaks the version the SP asked for up to ``--max-version`` (a 3.0
CONNECT to a 2.0-only simulator is refused with status 4, as 2.0 ISMGs do), answers SUBMIT with a
spec-shaped Msg_Id, sends a status
report DELIVER for each accepted part (Registered_Delivery=1), answers and sends ACTIVE_TEST, and
handles TERMINATE. Destination numbers pick a behaviour (``sending/_loopback.py``): 9001 flow
control (result 8) twice, 9002 refused (result 9), 9003 report ``MK:0005``, 9004 report ``EXPIRED``;
a text starting ``MO:`` also produces an MO DELIVER from the handset.

``--script`` makes it misbehave the way users report real ISMGs do (``sending_peers/script.py``).

Like a real ISMG it does not forget: with ``--journal`` each accepted part is appended before its
SUBMIT_RESP, each report once the SP acknowledged it; reports not yet acknowledged are re-sent to the
account's next connection, also after this process is killed and restarted. Listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sending_peers import journal
from sending_peers.script import Script, long_mo_parts
from smsguard.sending import _cmpp_protocol as p
from smsguard.sending._corked import CorkedWriter
from smsguard.sending._loopback import MO_PREFIX, THROTTLE_TIMES, scenario

RESULT_REFUSED = 9  # "other error": a permanent refusal in the simulator's scenarios


@dataclass
class _Session:
    account: str
    writer: asyncio.StreamWriter
    version: int = p.V20
    sequence: int = 0
    inflight: dict[int, int] = field(default_factory=dict)  # our DELIVER sequence -> report Msg_Id (0 for MO)

    def next_sequence(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence

    def send(self, pdu: p.Pdu, sequence: int | None = None) -> int:
        seq = self.next_sequence() if sequence is None else sequence
        self.writer.write(p.encode(seq, pdu, self.version))
        return seq


class CmppSimulator:
    def __init__(
        self,
        accounts: dict[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        journal: Path | None = None,
        active_test_interval: float = 0.0,
        gateway_code: int = 0x1234,
        report_delay: float = 0.0,
        max_version: int = p.V30,
        script: Script | None = None,
    ) -> None:
        self.max_version = max_version
        self.script = script or Script()
        self.held: list[tuple[_Session, int, p.SubmitResp]] = []  # SUBMIT_RESPs held back to reorder them
        self.throttle_until = 0.0
        self.registered_delivery: list[int] = []
        self.accounts = accounts
        self.host = host
        self.port = port
        self.gateway_code = gateway_code
        self.active_test_interval = active_test_interval
        self.report_delay = report_delay
        self.sessions: dict[str, list[_Session]] = {}
        self.pending: dict[str, dict[int, dict[str, Any]]] = {}  # account -> Msg_Id -> report fields
        self.attempts: dict[tuple[str, bytes], int] = {}
        self.stats = {"submits": 0, "accepted": 0, "active_tests": 0, "connects": 0, "terminates": 0}
        self._sequence = int.from_bytes(os.urandom(2), "big")
        self._server: asyncio.Server | None = None
        self._journal_path = journal
        self._journal = None
        if journal is not None:
            self._load(journal)
            self._journal = journal.open("a", encoding="utf-8")

    # -- durability -----------------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        for rec in journal.records(path):
            if rec["event"] == "accepted" and rec.get("report"):
                self.pending.setdefault(rec["account"], {})[rec["msg_id"]] = rec["report"]
            elif rec["event"] == "reported":
                self.pending.get(rec["account"], {}).pop(rec["msg_id"], None)

    def _log(self, record: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._journal.flush()  # into the OS: survives a SIGKILL of this process

    # -- server ---------------------------------------------------------------------------------------

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for sessions in self.sessions.values():
                for s in sessions:
                    s.writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._journal is not None:
            self._journal.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer = CorkedWriter(writer)  # type: ignore[assignment]
        session: _Session | None = None
        pinger: asyncio.Task[None] | None = None
        try:
            seq, first = await asyncio.wait_for(p.read_pdu(reader), 10)
            if not isinstance(first, p.Connect):
                return
            session = self._connect(seq, first, writer)
            if session is None:
                await writer.drain()
                return
            if self.active_test_interval > 0:
                pinger = asyncio.create_task(self._ping(session))
            for msg_id, report in list(self.pending.get(session.account, {}).items()):
                self._send_report(session, msg_id, report)
            while True:
                seq, pdu = await p.read_pdu(reader, session.version)
                if isinstance(pdu, p.Submit):
                    self._submit(session, seq, pdu)
                elif isinstance(pdu, p.DeliverResp):
                    self._delivered(session, seq, pdu)
                elif isinstance(pdu, p.ActiveTest):
                    self.stats["active_tests"] += 1
                    session.send(p.ActiveTestResp(), seq)
                elif isinstance(pdu, p.Terminate):
                    self.stats["terminates"] += 1
                    session.send(p.TerminateResp(), seq)
                    await writer.drain()
                    return
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, p.CmppError):
            pass
        finally:
            if pinger is not None:
                pinger.cancel()
            if session is not None:
                self.sessions.get(session.account, []).remove(session)
            writer.close()

    def _connect(self, seq: int, pdu: p.Connect, writer: asyncio.StreamWriter) -> _Session | None:
        secret = self.accounts.get(pdu.source_addr)
        status = 0
        if secret is None:
            status = 2  # illegal source address
        elif pdu.version >> 4 > self.max_version >> 4:  # 0x21 is still 2.x
            status = p.CONNECT_STATUS_VERSION
        else:
            ts = f"{pdu.timestamp:010d}"
            if p.authenticator_source(pdu.source_addr, secret, ts) != pdu.authenticator:
                status = 3
        version = p.V30 if min(pdu.version, self.max_version) >= p.V30 else p.V20
        auth = p.authenticator_ismg(status, pdu.authenticator, secret or "", version)
        writer.write(p.encode(seq, p.ConnectResp(status, auth, self.max_version), version))
        if status != 0:
            return None
        self.stats["connects"] += 1
        session = _Session(pdu.source_addr, writer, version)
        self.sessions.setdefault(pdu.source_addr, []).append(session)
        return session

    async def _ping(self, session: _Session) -> None:
        while True:
            await asyncio.sleep(self.active_test_interval)
            session.send(p.ActiveTest())

    def _next_msg_id(self) -> int:
        self._sequence = (self._sequence + 1) & 0xFFFF
        return p.make_msg_id(self.gateway_code, self._sequence)

    def _respond(self, session: _Session, seq: int, resp: p.SubmitResp) -> None:
        if self.script.reorder <= 1:
            session.send(resp, seq)
            return
        self.held.append((session, seq, resp))
        if len(self.held) >= self.script.reorder:
            held, self.held = self.held, []
            for s, q, r in reversed(held):  # the last submit is answered first
                s.send(r, q)
        else:
            asyncio.get_running_loop().call_later(0.05, self._flush_held)

    def _flush_held(self) -> None:
        held, self.held = self.held, []
        for s, q, r in reversed(held):
            s.send(r, q)

    def _submit(self, session: _Session, seq: int, pdu: p.Submit) -> None:
        self.stats["submits"] += 1
        self.registered_delivery.append(pdu.registered_delivery)
        dest = pdu.dest_terminal_ids[0]
        kind = scenario(dest)
        loop = asyncio.get_running_loop()
        if self.script.throttle_for > 0 and dest.endswith("8001"):
            if self.throttle_until == 0.0:
                self.throttle_until = loop.time() + self.script.throttle_for
            if loop.time() < self.throttle_until:
                self.stats["throttled"] = self.stats.get("throttled", 0) + 1
                session.send(p.SubmitResp(0, p.SUBMIT_RESULT_FLOW_CONTROL), seq)
                return
        if kind == "throttle":
            key = (dest, pdu.content)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            if self.attempts[key] <= THROTTLE_TIMES:
                session.send(p.SubmitResp(0, p.SUBMIT_RESULT_FLOW_CONTROL), seq)
                return
        if kind == "reject":
            session.send(p.SubmitResp(0, RESULT_REFUSED), seq)
            return
        if self.script.throttle_part and pdu.pk_total > 1 and pdu.pk_number == 2:
            key = (dest, pdu.content)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            if self.attempts[key] <= self.script.throttle_part:
                session.send(p.SubmitResp(0, p.SUBMIT_RESULT_FLOW_CONTROL), seq)
                return
        msg_id = self._next_msg_id()
        raw, part = p.strip_udh(pdu.tp_udhi, pdu.content)
        text = p.decode_text(pdu.msg_fmt, raw)
        stat = {"undeliv": "MK:0005", "expired": "EXPIRED"}.get(kind, "DELIVRD")
        now = dt.datetime.now().strftime("%y%m%d%H%M")
        report = {"stat": stat, "dest": dest, "src": pdu.src_id, "time": now} if pdu.registered_delivery else None
        self._log(
            {"event": "accepted", "account": session.account, "msg_id": msg_id, "dest": dest, "text": text,
             "part": part, "report": report}
        )
        self.stats["accepted"] += 1
        if report is not None and self.script.partial_receipts and part is not None and part[2] != 1:
            report = None  # receipts for the first part of a long message only, as some ISMGs do
            self.pending.get(session.account, {}).pop(msg_id, None)
        if report is not None and self.script.receipt_first:
            self.pending.setdefault(session.account, {})[msg_id] = report
            self._send_report(session, msg_id, report)  # the report overtakes the SUBMIT_RESP
            report = None
        self._respond(session, seq, p.SubmitResp(0 if self.script.zero_msg_id else msg_id, 0))
        if report is not None:
            self.pending.setdefault(session.account, {})[msg_id] = report
            if self.report_delay > 0:
                asyncio.get_running_loop().call_later(self.report_delay, self._send_report, session, msg_id, report)
            else:
                self._send_report(session, msg_id, report)
        if text.startswith(MO_PREFIX) and (part is None or part[2] == 1):
            sessions = self.sessions.get(session.account, [session])
            for n, (udhi, fmt, content) in enumerate(long_mo_parts(text[len(MO_PREFIX) :], self.script)):
                # script.spread_mo: part n goes over connection n (of this account's connections)
                via = sessions[n % len(sessions)] if self.script.spread_mo else session
                mo = p.Deliver(self._next_msg_id(), pdu.src_id, dest, content, registered_delivery=0,
                               msg_fmt=fmt, tp_udhi=udhi)
                via.inflight[via.send(mo)] = 0

    def _send_report(self, session: _Session, msg_id: int, report: dict[str, Any]) -> None:
        if session.writer.is_closing():
            return
        content = p.encode_report(
            p.StatusReport(msg_id, report["stat"], report["time"], report["time"], report["dest"]), session.version
        )
        pdu = p.Deliver(self._next_msg_id(), report["src"], report["dest"], content, registered_delivery=1,
                        msg_fmt=p.FMT_ASCII)
        session.inflight[session.send(pdu)] = msg_id

    def _delivered(self, session: _Session, seq: int, pdu: p.DeliverResp) -> None:
        msg_id = session.inflight.pop(seq, None)
        if msg_id and pdu.result == 0 and self.pending.get(session.account, {}).pop(msg_id, None) is not None:
            self._log({"event": "reported", "account": session.account, "msg_id": msg_id})


def _parse_accounts(values: list[str]) -> dict[str, str]:
    accounts = {}
    for value in values:
        sp_id, _, secret = value.partition(":")
        accounts[sp_id] = secret
    return accounts


async def _main(args: argparse.Namespace) -> None:
    sim = CmppSimulator(
        _parse_accounts(args.account or ["901234:secret"]),
        port=args.port,
        journal=Path(args.journal) if args.journal else None,
        active_test_interval=args.active_test,
        max_version=int(args.max_version, 0),
        script=Script.parse(args.script),
    )
    port = await sim.start()
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=7890)
    parser.add_argument("--account", action="append", help="SP_ID:SECRET (repeatable)")
    parser.add_argument("--journal", help="append-only record of accepted parts and acknowledged reports")
    parser.add_argument("--active-test", type=float, default=0.0, help="send ACTIVE_TEST every N seconds")
    parser.add_argument("--max-version", default="0x30", help="highest CMPP version spoken: 0x20 or 0x30")
    parser.add_argument("--script", default="", help="misbehaviours, see sending_peers/script.py")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
