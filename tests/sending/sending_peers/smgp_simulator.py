"""An asyncio SMGP 3.0 SMGW simulator: the real peer of the SMGP adapter in tests and benchmarks.

    python -m sending_peers.smgp_simulator --port 8890 --account 10690001:secret [--script ...]

It authenticates Login (MD5, LoginMode 2 = transmit), answers Submit with a BCD MsgID, sends a status
report Deliver (IsReport = 1) for each accepted part when NeedReport = 1, answers Active_Test, handles
Exit. Destination numbers pick a behaviour (``sending/_loopback.py``): 9001 "system busy" (status 1)
twice, 9002 refused (status 39, routing error), 9003 report ``UNDELIV``, 9004 ``EXPIRED``; a text
starting ``MO:`` makes the handset reply (long replies in UDH parts, TP_udhi as a TLV). ``--script``:
``sending_peers/script.py``. Listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools

from sending_peers.script import Script, long_mo_parts
from sending_peers.serving import serve
from smsguard.sending import _smgp_protocol as p
from smsguard.sending._corked import CorkedWriter
from smsguard.sending._long_sms import decode_text, strip_udh
from smsguard.sending._loopback import MO_PREFIX, THROTTLE_TIMES, scenario

STATUS_ROUTE_ERROR = 39


class _Session:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.seq = itertools.count(1)

    def send(self, pdu: p.Pdu, sequence: int | None = None) -> None:
        self.writer.write(p.encode(next(self.seq) if sequence is None else sequence, pdu))


class SmgpSimulator:
    def __init__(self, accounts: dict[str, str], *, port: int = 0, script: Script | None = None) -> None:
        self.accounts, self.port = accounts, port
        self.script = script or Script()
        self.sessions: list[_Session] = []
        self.attempts: dict[tuple[str, bytes], int] = {}
        self.counter = itertools.count(1)
        self.throttle_until = 0.0
        self.stats = {"submits": 0, "accepted": 0, "throttled": 0, "need_report_off": 0}

    async def start(self) -> int:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = server.sockets[0].getsockname()[1]
        return self.port

    def _msg_id(self) -> bytes:
        t = dt.datetime.now()
        return p.make_msg_id(123456, t.month, t.day, t.hour, t.minute, next(self.counter))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer = CorkedWriter(writer)  # type: ignore[assignment]
        session = _Session(writer)
        try:
            seq, login = await asyncio.wait_for(p.read_pdu(reader), 10)
            if not isinstance(login, p.Login):
                return
            secret = self.accounts.get(login.client_id)
            ts = f"{login.timestamp:010d}"
            ok = secret is not None and p.authenticator_client(login.client_id, secret, ts) == login.authenticator
            status = 0 if ok else p.STATUS_AUTH
            session.send(p.LoginResp(status, p.authenticator_server(status, login.authenticator, secret or "")), seq)
            if not ok:
                await writer.drain()
                return
            self.sessions.append(session)
            while True:
                seq, pdu = await p.read_pdu(reader)
                if isinstance(pdu, p.Submit):
                    self._submit(session, seq, pdu)
                elif isinstance(pdu, p.ActiveTest):
                    session.send(p.ActiveTestResp(), seq)
                elif isinstance(pdu, p.Exit):
                    session.send(p.ExitResp(), seq)
                    await writer.drain()
                    return
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, p.SmgpError):
            pass
        finally:
            if session in self.sessions:
                self.sessions.remove(session)
            writer.close()

    def _submit(self, session: _Session, seq: int, pdu: p.Submit) -> None:
        self.stats["submits"] += 1
        self.stats["need_report_off"] += pdu.need_report == 0
        dest = pdu.dest_term_ids[0]
        kind = scenario(dest)
        loop = asyncio.get_running_loop()
        if self.script.throttle_for > 0 and dest.endswith("8001"):
            self.throttle_until = self.throttle_until or loop.time() + self.script.throttle_for
            if loop.time() < self.throttle_until:
                self.stats["throttled"] += 1
                session.send(p.SubmitResp(b"\0" * 10, p.STATUS_BUSY), seq)
                return
        if kind == "throttle":
            key = (dest, pdu.content)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            if self.attempts[key] <= THROTTLE_TIMES:
                session.send(p.SubmitResp(b"\0" * 10, p.STATUS_BUSY), seq)
                return
        if kind == "reject":
            session.send(p.SubmitResp(b"\0" * 10, STATUS_ROUTE_ERROR), seq)
            return
        msg_id = self._msg_id()
        self.stats["accepted"] += 1
        udhi = p.tlv_byte(pdu.tlvs, p.TAG_TP_UDHI)
        raw, part = strip_udh(udhi, pdu.content)
        report = None
        if pdu.need_report and not (self.script.partial_receipts and part is not None and part[2] != 1):
            stat = {"undeliv": "UNDELIV", "expired": "EXPIRED"}.get(kind, "DELIVRD")
            now = dt.datetime.now().strftime("%y%m%d%H%M")
            content = p.encode_report(p.Report(msg_id, stat, "000" if stat == "DELIVRD" else "001", now, now))
            report = p.Deliver(self._msg_id(), 1, 0, dt.datetime.now().strftime("%Y%m%d%H%M%S"), dest,
                               pdu.src_term_id, content)
        if report is not None and self.script.receipt_first:
            session.send(report)
            report = None
        session.send(p.SubmitResp(b"\0" * 10 if self.script.zero_msg_id else msg_id, 0), seq)
        if report is not None:
            session.send(report)
        text = decode_text(pdu.msg_format, raw)
        if text.startswith(MO_PREFIX) and (part is None or part[2] == 1):
            for n, (mo_udhi, fmt, content) in enumerate(long_mo_parts(text[len(MO_PREFIX) :], self.script)):
                via = self.sessions[n % len(self.sessions)] if self.script.spread_mo else session
                via.send(p.Deliver(self._msg_id(), 0, fmt, dt.datetime.now().strftime("%Y%m%d%H%M%S"), dest,
                                   pdu.src_term_id, content, {p.TAG_TP_UDHI: bytes([mo_udhi])}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8890)
    parser.add_argument("--account", action="append", help="CLIENT_ID:SECRET (repeatable)")
    parser.add_argument("--script", default="")
    args = parser.parse_args()
    accounts = dict(a.split(":", 1) for a in (args.account or ["10690001:secret"]))
    serve(SmgpSimulator(accounts, port=args.port, script=Script.parse(args.script)).start)


if __name__ == "__main__":
    main()
