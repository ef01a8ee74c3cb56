"""Our Msg_Ids are unique per deployment (sending/_access.py): two CMPP or SMPP servers for customers on one SQL
database (as two ``serve`` hosts would be) never hand out the same id, not even in the same second, and neither
does a server restarted within the second. Each server takes its node number from SQL at start (the grouped
handler's ``take_node``); the clients pipeline their SUBMITs (CMPP: ``cmppy``'s PDUs; SMPP: submit_sm written
here byte by byte, SMPP 3.4 §4.4.1) so the ids of both servers are handed out within milliseconds."""

from __future__ import annotations

import asyncio
import struct
import uuid

import pytest
from test_access_grouping import pipelined as cmpp_pipelined

ROUNDS = 3  # a round can straddle a second boundary; one of three sharing a second is enough to show the point


def _cstring(value: str) -> bytes:
    return value.encode() + b"\0"


async def _smpp_read(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    length, command, status, seq = struct.unpack("!LLLL", await reader.readexactly(16))
    return command, status, seq, await reader.readexactly(length - 16)


async def smpp_pipelined(port: int, system_id: str, password: str,
                         submits: list[tuple[str, str]]) -> dict[int, tuple[int, int]]:
    """bind_transceiver, every submit_sm written at once; {index: (message_id as a number, command_status)}."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = _cstring(system_id) + _cstring(password) + _cstring("") + bytes([0x34, 0, 0]) + _cstring("")
    writer.write(struct.pack("!LLLL", 16 + len(body), 0x00000009, 0, 1) + body)
    command, status, _, _ = await _smpp_read(reader)
    assert command == 0x80000009 and status == 0, "bind refused"
    for i, (phone, content) in enumerate(submits):
        sm = content.encode("utf-16-be")
        body = (_cstring("") + bytes([0, 0]) + _cstring("106900") + bytes([1, 1]) + _cstring(phone)
                + bytes([0, 0, 0]) + _cstring("") + _cstring("") + bytes([1, 0, 8, 0, len(sm)]) + sm)
        writer.write(struct.pack("!LLLL", 16 + len(body), 0x00000004, 0, 2 + i) + body)
    await writer.drain()
    out: dict[int, tuple[int, int]] = {}
    while len(out) < len(submits):
        command, status, seq, body = await _smpp_read(reader)
        if command == 0x80000004:
            text = body.rstrip(b"\0").decode()
            out[seq - 2] = (int(text) if text else 0, status)
    writer.close()
    return out


@pytest.fixture(params=["cmpp", "smpp"])
def protocol(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def customer(access_ctx):
    from smsguard.storage import create_tenant
    from smsguard.vendors import create_account

    tenant = create_tenant(access_ctx.db, f"ids-{uuid.uuid4().hex[:8]}", rate_limit=10**9)
    return create_account(access_ctx.db, access_ctx.vault, tenant.name, window=1024, rate=100_000,
                          max_connections=4, sp_id=uuid.uuid4().hex[:6], secret_length=8)


def _server(protocol: str, account, handler):
    from smsguard.sending import CmppServer, SmppServer

    server_class = CmppServer if protocol == "cmpp" else SmppServer
    return server_class([account], handler, port=0)


def _submits(n: int, tag: int) -> list[tuple[str, str]]:
    return [(f"139{tag:02d}{i:06d}", f"【示例商城】您的验证码是{i:06d}，5分钟内有效。") for i in range(n)]


async def _submit_all(protocol: str, port: int, account, secret: str, submits) -> list[int]:
    send = cmpp_pipelined if protocol == "cmpp" else smpp_pipelined
    answers = await send(port, account.sp_id, secret, submits)
    assert all(result == 0 for _, result in answers.values()), sorted({r for _, r in answers.values()})
    return [msg_id for msg_id, _ in answers.values()]


def _second(msg_id: int) -> int:
    return msg_id >> 38  # month .. second (the module docstring of sending/_access.py)


def _without_node(msg_id: int) -> int:
    return msg_id & ~(0xFFF << 16)  # what the id was before node numbers: these collide in a shared second


def test_two_servers_on_one_database_never_hand_out_the_same_id(access_ctx, customer, protocol: str) -> None:
    from smsguard.vendors import GroupedSubmitHandler

    account, secret = customer
    shared_second = False
    for round_ in range(ROUNDS):
        async def go(round_: int = round_) -> tuple[list[int], list[int], int, int]:
            a = _server(protocol, account, GroupedSubmitHandler(access_ctx))
            b = _server(protocol, account, GroupedSubmitHandler(access_ctx))
            port_a, port_b = await a.start(), await b.start()
            try:
                ids_a, ids_b = await asyncio.gather(
                    _submit_all(protocol, port_a, account, secret, _submits(300, 2 * round_)),
                    _submit_all(protocol, port_b, account, secret, _submits(300, 2 * round_ + 1)),
                )
                return ids_a, ids_b, a.node, b.node
            finally:
                await a.stop()
                await b.stop()

        ids_a, ids_b, node_a, node_b = asyncio.run(go())
        assert node_a != node_b
        assert len(set(ids_a) | set(ids_b)) == 600  # no id twice, within a server or across them
        assert len(set(ids_a)) == 300
        if {_second(i) for i in ids_a} & {_second(i) for i in ids_b}:
            shared_second = True
            # the point: without the node number these would have been the same ids
            assert {_without_node(i) for i in ids_a} & {_without_node(i) for i in ids_b}
            break
    assert shared_second, "no round had both servers hand out ids in one second"


def test_a_restarted_server_does_not_repeat_its_ids(access_ctx, customer, protocol: str) -> None:
    from smsguard.vendors import GroupedSubmitHandler

    account, secret = customer
    seen: set[int] = set()
    nodes: list[int] = []
    repeat_without_node = False
    for round_ in range(ROUNDS + 1):
        async def go(round_: int = round_) -> tuple[list[int], int]:
            # a restart: a new server and handler (as a new process has) right after the previous one stopped
            server = _server(protocol, account, GroupedSubmitHandler(access_ctx))
            port = await server.start()
            try:
                return await _submit_all(protocol, port, account, secret, _submits(200, 10 + round_)), server.node
            finally:
                await server.stop()

        ids, node = asyncio.run(go())
        nodes.append(node)
        assert len(set(ids)) == len(ids) and not seen & set(ids)
        if {_without_node(i) for i in ids} & {_without_node(i) for i in seen}:
            repeat_without_node = True  # restarted within the second: the old ids would have repeated
        seen |= set(ids)
    assert len(set(nodes)) == len(nodes)
    assert repeat_without_node, "no restart happened within the second of the previous run's ids"
