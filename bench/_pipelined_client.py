"""The customer's side of the access benchmarks (bench/access.py, bench/cmpp_server.py): one bind, submits
pipelined up to a window, each answer counted. PDUs come from registry libraries (cmppy, smpplib), never from
our own codecs, so the servers are measured against code no one here wrote."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable, Sequence

CMPP_CONNECT_RESP, CMPP_SUBMIT_RESP = 0x80000001, 0x80000004
SMPP_BIND_TRX_RESP, SMPP_SUBMIT_SM_RESP = 0x80000009, 0x80000004

Answer = Callable[[], Awaitable["bool | None"]]
"""Reads the next PDU: True / False for a submit answered ok / refused, None for any other PDU."""


async def read_cmpp(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(Command_Id, what follows Sequence_Id) of the next CMPP PDU."""
    (length,) = struct.unpack("!L", await reader.readexactly(4))
    body = await reader.readexactly(length - 4)
    return struct.unpack("!L", body[:4])[0], body[8:]


async def read_smpp(reader: asyncio.StreamReader) -> tuple[int, int]:
    """(command_id, command_status) of the next SMPP PDU, its body skipped."""
    length, command, status, _ = struct.unpack("!LLLL", await reader.readexactly(16))
    await reader.readexactly(length - 16)
    return command, status


def cmpp_answers(reader: asyncio.StreamReader) -> Answer:
    async def answer() -> bool | None:
        cmd, body = await read_cmpp(reader)
        # SUBMIT_RESP: Msg_Id (8 octets), then Result (4 octets in CMPP 3.0; 2.0's one octet is padded here)
        return struct.unpack("!L", body[8:12])[0] == 0 if cmd == CMPP_SUBMIT_RESP else None

    return answer


def smpp_answers(reader: asyncio.StreamReader) -> Answer:
    async def answer() -> bool | None:
        command, status = await read_smpp(reader)
        return status == 0 if command == SMPP_SUBMIT_SM_RESP else None

    return answer


async def pump(writer: asyncio.StreamWriter, pdus: Sequence[bytes], window: int, answer: Answer) -> tuple[float, int]:
    """Write ``pdus`` keeping at most ``window`` unanswered; (seconds until the last answer, answers ok)."""
    n = len(pdus)
    ok = answered = sent = 0
    t0 = time.perf_counter()
    while answered < n:
        while sent < n and sent - answered < window:
            writer.write(pdus[sent])
            sent += 1
        await writer.drain()
        result = await answer()
        if result is not None:
            answered += 1
            ok += result
    return time.perf_counter() - t0, ok


async def cmpp_connect(
    host: str, port: int, sp_id: str, secret: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a socket and CONNECT with cmppy's PDU; AssertionError when refused."""
    from cmppy.request import ConnectReq

    reader, writer = await asyncio.open_connection(host, port)
    writer.write(ConnectReq(sp_id, secret).message)
    cmd, body = await read_cmpp(reader)
    assert cmd == CMPP_CONNECT_RESP and struct.unpack("!L", body[:4])[0] == 0, "CONNECT refused"
    return reader, writer
