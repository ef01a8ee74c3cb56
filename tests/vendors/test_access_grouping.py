"""CMPP SUBMITs grouped (issue 18, point 3a): concurrent SUBMITs from a customer's pipelined client become a few
batches, not one batch each, and every SUBMIT is still answered by itself after the commit: 0 with its own
Msg_Id, 20 for its blocked text, 21 when its number opted out. The client is ``cmppy`` (PyPI): its CONNECT and
SUBMIT PDUs over a raw socket, all sent before the first answer is read."""

from __future__ import annotations

import asyncio
import struct
import uuid

from cmppy.request import ConnectReq, SubmitReq
from sqlalchemy import text


async def read_pdu(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    (length,) = struct.unpack("!L", await reader.readexactly(4))
    body = await reader.readexactly(length - 4)
    command, seq = struct.unpack("!LL", body[:8])
    return command, seq, body[8:]


async def pipelined(port: int, sp_id: str, secret: str, submits: list[tuple[str, str]]) -> dict[int, tuple[int, int]]:
    """Every (phone, text) SUBMIT written at once; returns {index: (Msg_Id, Result)} from the SUBMIT_RESPs."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(ConnectReq(sp_id, secret).message)
    command, _, body = await read_pdu(reader)
    assert command == 0x80000001 and struct.unpack("!L", body[:4])[0] == 0, "CONNECT refused"
    by_seq = {}
    for i, (phone, content) in enumerate(submits):
        pdu = SubmitReq(sp_id, content, dest_terminal_id=[phone], registered_delivery=1).message
        by_seq[struct.unpack("!L", pdu[8:12])[0]] = i
        writer.write(pdu)
    await writer.drain()
    out: dict[int, tuple[int, int]] = {}
    while len(out) < len(submits):
        command, seq, body = await read_pdu(reader)
        if command == 0x80000004:
            out[by_seq[seq]] = struct.unpack("!QL", body[:12])
    writer.close()
    return out


def test_concurrent_submits_are_grouped_and_each_answered_after_the_commit(backend, access_ctx) -> None:
    from smsguard import batches
    from smsguard.sending import CmppServer
    from smsguard.storage import create_tenant
    from smsguard.vendors import GroupedSubmitHandler, create_account

    tenant = create_tenant(access_ctx.db, f"grp-{uuid.uuid4().hex[:8]}", rate_limit=10**9)
    account, secret = create_account(
        access_ctx.db, access_ctx.vault, tenant.name, window=64, rate=10_000, sp_id=uuid.uuid4().hex[:6]
    )
    batches.opt_out(
        access_ctx, phone=batches.parse_phone("13900000007"), tenant_id=tenant.id, source="test", actor="test"
    )
    submits = []
    for i in range(60):
        if i % 10 == 3:
            submits.append((f"1390000{i:04d}", f"【示例商城】澳门赌场{i}号桌开业"))
        else:
            submits.append((f"1390000{i:04d}", f"【示例商城】您的快递{i}已到，请及时取件。"))
    submits[7] = ("13900000007", "【示例商城】您的快递7已到，请及时取件。")  # opted out above
    handler = GroupedSubmitHandler(access_ctx)

    async def go() -> dict[int, tuple[int, int]]:
        server = CmppServer([account], handler, port=0)
        port = await server.start()
        try:
            return await pipelined(port, account.sp_id, secret, submits)
        finally:
            await server.stop()

    answers = asyncio.run(go())
    results = {i: r for i, (_, r) in answers.items()}
    assert {i for i, r in results.items() if r == 20} == {i for i in range(60) if i % 10 == 3}
    assert results[7] == 21
    accepted = {i for i, r in results.items() if r == 0}
    assert accepted == set(range(60)) - {i for i in range(60) if i % 10 == 3} - {7}
    assert 1 <= handler.groups < 10  # 60 SUBMITs, a window of 64: a few groups, not 60 batches
    with access_ctx.db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.msg_id, m.batch_id, m.reported_at, c.text, r.status FROM cmpp_messages m "
                "JOIN recipients r ON r.batch_id = m.batch_id AND r.seq = m.seq "
                "JOIN batch_contents c ON c.batch_id = r.batch_id AND c.content_id = r.content_id "
                "WHERE m.tenant_id = :t"
            ),
            {"t": tenant.id},
        ).all()
    by_msg = {int(r.msg_id): r for r in rows}
    for i in accepted:  # each Msg_Id answered maps to its own text, queued to be sent, not reported yet
        row = by_msg[answers[i][0]]
        assert row.text == submits[i][1] and row.status != "rejected" and row.reported_at is None
    blocked_rows = [r for r in rows if "赌场" in r.text]
    assert len(blocked_rows) == 6 and all(r.reported_at is not None and r.status == "rejected" for r in blocked_rows)
    assert len({r.batch_id for r in rows}) < len(rows) / 5
