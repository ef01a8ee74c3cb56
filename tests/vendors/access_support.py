"""Customers' clients for the access tests, shared by the tests against a real ``serve`` and the in-process ones:
npm's ``smpp`` package as an ESME (tests/sending/smpp_peer/customer.js, a child process speaking JSON lines), and
PyPI's ``cmppy`` (CONNECT, SUBMIT; it has no DELIVER parser, so reports and MO are decoded here byte by byte,
CMPP 3.0 DELIVER layout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cmppy import Cmppy, SubmitReq
from cmppy.response import parse_response

SMPP_PEER_DIR = Path(__file__).resolve().parents[1] / "sending" / "smpp_peer"
ACTIVE_TEST = 0x00000008


def customer_script() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the npm smpp customer (apt-get install nodejs npm)")
    if not (SMPP_PEER_DIR / "node_modules" / "smpp").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SMPP_PEER_DIR, check=True, timeout=300
        )
    return SMPP_PEER_DIR / "customer.js"


class NpmCustomer:
    """customer.js bound to 127.0.0.1:``port``; ``extra`` are its other options (``--bind receiver``,
    ``--ignore-enquire-link``)."""

    def __init__(self, port: int, system_id: str, password: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            ["node", str(customer_script()), "--port", str(port), "--system-id", system_id, "--password", password,
             *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=SMPP_PEER_DIR,
        )
        self.events: queue.Queue[dict] = queue.Queue()
        self.backlog: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def send(self, **cmd: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def next(self, event: str, timeout: float = 90.0, **match: object) -> dict:
        """The first event of this kind matching ``match``; others stay for later calls (answers may come in
        any order: SMPP allows it, and two groups can be written at once)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.backlog):
                if e["event"] == event and all(e.get(k) == v for k, v in match.items()):
                    return self.backlog.pop(i)
            left = deadline - time.monotonic()
            assert left > 0, f"no {event} {match}"
            with contextlib.suppress(queue.Empty):
                self.backlog.append(self.events.get(timeout=left))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send(op="unbind")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def bind_cmpp(port: int, sp_id: str, secret: str) -> Cmppy | None:
    """``cmppy`` (PyPI) CONNECTed to 127.0.0.1:``port``, or None if refused."""
    client = Cmppy("127.0.0.1", port, sp_id, secret)
    client._so.settimeout(60)
    return client if client._commence() else None


def submit(client: Cmppy, sp_id: str, phone: str, content: str) -> tuple[int, int]:
    client._write(SubmitReq(sp_id, content, dest_terminal_id=[phone], registered_delivery=1).message)
    while True:
        pdu = _read(client)
        if struct.unpack("!L", pdu[4:8])[0] == 0x80000004:
            res = parse_response(pdu)
            return res.msg_id, res.result


def _read(client: Cmppy) -> bytes:
    """The next PDU; the server's CMPP_ACTIVE_TEST is answered on the way, as a CMPP client must (cmppy has no
    reader of its own)."""
    while True:
        pdu = read_pdu(client)
        command, seq = struct.unpack("!LL", pdu[4:12])
        if command != ACTIVE_TEST:
            return pdu
        client._write(struct.pack("!LLLB", 13, ACTIVE_TEST | 0x80000000, seq, 0))


def read_pdu(client: Cmppy) -> bytes:
    """The next PDU as it is (b"" once the server closed the connection)."""
    head = b""
    while len(head) < 4:
        got = client._so.recv(4 - len(head))
        if not got:
            return b""
        head += got
    (length,) = struct.unpack("!L", head)
    body = b""
    while len(body) < length - 4:
        body += client._so.recv(length - 4 - len(body))
    return head + body


def read_report(client: Cmppy) -> tuple[int, str, str]:
    """The next DELIVER that is a status report (CMPP 3.0): (Msg_Id it reports on, Stat, Dest_terminal_Id)."""
    while True:
        pdu = _read(client)
        command, seq = struct.unpack("!LL", pdu[4:12])
        if command != 0x00000005:
            continue
        body = pdu[12:]
        msg_id = struct.unpack("!Q", body[:8])[0]
        # Msg_Id 8, Dest_Id 21, Service_Id 10, TP_pid/TP_udhi/Msg_Fmt 3, Src_terminal_Id 32 + type 1
        registered, length = body[75], body[76]
        content = body[77 : 77 + length]
        resp = struct.pack("!QL", msg_id, 0)  # DELIVER_RESP (3.0: Result is 4 octets)
        client._write(struct.pack("!LLL", 12 + len(resp), 0x80000005, seq) + resp)
        if registered == 1:
            (reported,) = struct.unpack("!Q", content[:8])
            return reported, content[8:15].decode(), content[15 + 20 : 15 + 20 + 32].rstrip(b"\0").decode()


def read_mo(client: Cmppy) -> tuple[str, str]:
    """The next DELIVER that is an MO (Registered_Delivery 0, CMPP 3.0): (Src_terminal_Id, text)."""
    while True:
        pdu = _read(client)
        command, seq = struct.unpack("!LL", pdu[4:8] + pdu[8:12])
        if command != 0x00000005:
            continue
        body = pdu[12:]
        msg_id = struct.unpack("!Q", body[:8])[0]
        client._write(struct.pack("!LLL", 24, 0x80000005, seq) + struct.pack("!QL", msg_id, 0))
        fmt, src, registered, length = body[41], body[42:74], body[75], body[76]
        if registered == 0:
            content = body[77 : 77 + length]
            return src.rstrip(b"\0").decode(), content.decode("utf-16-be" if fmt == 8 else "latin-1")


class Running:
    """An access server (CmppServer / SmppServer) on its own event-loop thread, for the synchronous clients."""

    def __init__(self, server) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.port = self.loop.run_until_complete(server.start())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def sessions(self, sp_id: str) -> int:
        return asyncio.run_coroutine_threadsafe(self._count(sp_id), self.loop).result(10)

    async def _count(self, sp_id: str) -> int:
        return len(self.server.sessions.get(sp_id, []))

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
