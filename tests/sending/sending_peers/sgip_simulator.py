"""An asyncio SGIP 1.2 SMG simulator, in Unicom's connection model: the SP binds to us to Submit; we
connect BACK to the SP's listener (``--sp-port``) and Bind (Login Type 2) to send Report and Deliver.

    python -m sending_peers.sgip_simulator --port 8801 --account sp:secret --sp-port 8802 [--script ...]

Destination numbers pick a behaviour (``sending/_loopback.py``): 9001 "node busy" (result 11) twice,
9002 refused (result 6, illegal number), 9003 Report State 2 / ErrorCode 5, 9004 State 2 / ErrorCode 1;
a text starting ``MO:`` makes the handset reply (long replies in UDH parts). ``--script``:
``sending_peers/script.py`` (``spread_mo`` opens a second connection back to the SP). Each Report names
the Submit's own Sequence Number. Listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools

from sending_peers.script import Script, long_mo_parts
from sending_peers.serving import serve
from smsguard.sending import _sgip_protocol as p
from smsguard.sending._corked import CorkedWriter
from smsguard.sending._long_sms import decode_text, strip_udh
from smsguard.sending._loopback import MO_PREFIX, THROTTLE_TIMES, scenario

SMG_NODE = 2000012345
RESULT_ILLEGAL_NUMBER = 6


class SgipSimulator:
    def __init__(self, accounts: dict[str, str], *, port: int, sp_port: int, script: Script | None = None) -> None:
        self.accounts, self.port, self.sp_port = accounts, port, sp_port
        self.script = script or Script()
        self.counter = itertools.count(1)
        self.attempts: dict[tuple[str, bytes], int] = {}
        self.back: list[CorkedWriter] = []  # our connections to the SP
        self._back_lock = asyncio.Lock()
        self._readers: set[asyncio.Future[None]] = set()
        self.throttle_until = 0.0
        self.stats = {"submits": 0, "accepted": 0, "throttled": 0}

    async def start(self) -> int:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = server.sockets[0].getsockname()[1]
        return self.port

    def _seq(self) -> p.Sequence:
        return p.sequence(SMG_NODE, next(self.counter))

    async def _connections_back(self, account: tuple[str, str]) -> list[CorkedWriter]:
        """Connect (and Bind as the SMG) to the SP's listener; two connections when spreading MO."""
        async with self._back_lock:
            self.back = [w for w in self.back if not w.is_closing()]
            want = 2 if self.script.spread_mo else 1
            while len(self.back) < want:
                reader, raw = await asyncio.open_connection("127.0.0.1", self.sp_port)
                writer = CorkedWriter(raw)
                writer.write(p.encode(self._seq(), p.Bind(p.LOGIN_SMG_TO_SP, *account)))
                _, resp = await p.read_pdu(reader)
                if not isinstance(resp, p.Resp) or resp.result != 0:
                    writer.close()
                    raise ConnectionError(f"SP refused our Bind: {resp}")
                self._readers.add(asyncio.ensure_future(self._drain_responses(reader, writer)))
                self.back.append(writer)
            return self.back

    async def _drain_responses(self, reader: asyncio.StreamReader, writer: CorkedWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                await p.read_pdu(reader)
        writer.close()  # the SP hung up: the next Report opens a new connection back

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer = CorkedWriter(writer)  # type: ignore[assignment]
        try:
            seq, bind = await asyncio.wait_for(p.read_pdu(reader), 10)
            ok = isinstance(bind, p.Bind) and bind.login_type == p.LOGIN_SP_TO_SMG and (
                self.accounts.get(bind.login_name) == bind.login_password
            )
            writer.write(p.encode(seq, p.Resp(p.BIND | p.RESP, 0 if ok else p.RESULT_ILLEGAL_LOGIN)))
            if not ok:
                await writer.drain()
                return
            account = (bind.login_name, bind.login_password)  # type: ignore[union-attr]
            while True:
                seq, pdu = await p.read_pdu(reader)
                if isinstance(pdu, p.Submit):
                    await self._submit(writer, seq, pdu, account)
                elif isinstance(pdu, p.Unbind):
                    writer.write(p.encode(seq, p.Resp(p.UNBIND | p.RESP)))
                    await writer.drain()
                    return
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, p.SgipError):
            pass
        finally:
            writer.close()

    async def _submit(self, writer: asyncio.StreamWriter, seq: p.Sequence, pdu: p.Submit,
                      account: tuple[str, str]) -> None:
        self.stats["submits"] += 1
        dest = pdu.user_numbers[0]
        kind = scenario(dest)
        loop = asyncio.get_running_loop()
        if self.script.throttle_for > 0 and dest.endswith("8001"):
            self.throttle_until = self.throttle_until or loop.time() + self.script.throttle_for
            if loop.time() < self.throttle_until:
                self.stats["throttled"] += 1
                writer.write(p.encode(seq, p.Resp(p.SUBMIT | p.RESP, p.RESULT_NODE_BUSY)))
                return
        if kind == "throttle":
            key = (dest, pdu.content)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            if self.attempts[key] <= THROTTLE_TIMES:
                writer.write(p.encode(seq, p.Resp(p.SUBMIT | p.RESP, p.RESULT_NODE_BUSY)))
                return
        if kind == "reject":
            writer.write(p.encode(seq, p.Resp(p.SUBMIT | p.RESP, RESULT_ILLEGAL_NUMBER)))
            return
        self.stats["accepted"] += 1
        raw, part = strip_udh(pdu.tp_udhi, pdu.content)
        report = None
        wanted = pdu.report_flag == 1 or (pdu.report_flag == 0 and kind != "ok")  # 0: failures only
        if wanted and not (self.script.partial_receipts and part is not None and part[2] != 1):
            state, error = {"undeliv": (2, 5), "expired": (2, 1)}.get(kind, (0, 0))
            report = p.Report(seq, dest, state, error)
        back = await self._connections_back(account) if report is not None or raw else []
        if report is not None and self.script.receipt_first:
            back[0].write(p.encode(self._seq(), report))
            report = None
        writer.write(p.encode(seq, p.Resp(p.SUBMIT | p.RESP, 0)))
        if report is not None:
            back[0].write(p.encode(self._seq(), report))
        text = decode_text(pdu.message_coding, raw)
        if text.startswith(MO_PREFIX) and (part is None or part[2] == 1):
            for n, (udhi, fmt, content) in enumerate(long_mo_parts(text[len(MO_PREFIX) :], self.script)):
                via = back[n % len(back)]
                via.write(p.encode(self._seq(), p.Deliver(dest, pdu.sp_number, content, fmt, 0, udhi)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--account", action="append", help="LOGIN_NAME:PASSWORD (repeatable)")
    parser.add_argument("--sp-port", type=int, required=True, help="the SP's listener for Report and Deliver")
    parser.add_argument("--script", default="")
    args = parser.parse_args()
    accounts = dict(a.split(":", 1) for a in (args.account or ["sp:secret"]))
    serve(SgipSimulator(accounts, port=args.port, sp_port=args.sp_port, script=Script.parse(args.script)).start)


if __name__ == "__main__":
    main()
