"""The sent journal (sending/_journal.py over batches.SqlSentJournal): a submit is in SQL before the gateway
worker acknowledges its outbox entry, concurrent submits share a commit, a refused commit is retried and
never dropped, and a message re-driven after a Redis loss is restored from SQL instead of sent again.
Real SQL (both backends) and a real Redis; the whole-process proof is test_release_redis_loss.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

import redis
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from smsguard import batches
from smsguard.batches import SqlSentJournal
from smsguard.batches._tables import recipients
from smsguard.sending import (
    Channel,
    GatewayWorker,
    GroupCommit,
    LoopbackGateway,
    MessageStore,
    OutboundMessage,
    Outbox,
    Redrive,
    Router,
    SentReport,
    SubmitResult,
    redis_client,
)

CONTENT = "【示例商城】您的快递已到驿站，请及时取件。"


def _batch(ctx, tenant: int, n: int) -> list[str]:
    b = batches.create_batch(ctx, tenant, content=CONTENT, numbers=[f"137{i:08d}" for i in range(n)])
    return [batches.message_id(b["id"], seq) for seq in range(1, n + 1)]


def _gateway_ids(ctx, mid: str) -> str | None:
    b, s = batches._release.parse_message_id(mid)  # type: ignore[misc]
    with ctx.db.connect() as conn:
        return conn.execute(select(recipients.c.gateway_ids)
                            .where(recipients.c.batch_id == b, recipients.c.seq == s)).scalar_one()


def test_concurrent_submits_share_a_commit_and_are_in_sql_when_record_returns(ctx, tenant) -> None:
    ids = _batch(ctx, tenant, 40)

    class Counting(SqlSentJournal):
        calls: ClassVar[list[int]] = []

        async def record_sent(self, reports: Sequence[SentReport]) -> None:
            self.calls.append(len(reports))
            await super().record_sent(reports)

    journal = Counting(ctx)

    async def main() -> dict[str, SentReport]:
        commit = GroupCommit(journal)

        async def one(mid: str) -> None:
            await commit.record(SentReport(mid, "cmpp-a", (f"g-{mid}", f"h-{mid}")))
            assert _gateway_ids(ctx, mid) == f"g-{mid},h-{mid}"  # committed before record() returned

        await asyncio.gather(*(one(m) for m in ids))
        return await commit.sent_before([*ids, "999999-1", "not-ours"])

    found = asyncio.run(main())
    assert sum(journal.calls) == 40 and len(journal.calls) < 40, journal.calls
    assert set(found) == set(ids)
    assert found[ids[0]] == SentReport(ids[0], "cmpp-a", (f"g-{ids[0]}", f"h-{ids[0]}"))


def test_a_refused_commit_is_retried_and_its_callers_wait(ctx, tenant) -> None:
    ids = _batch(ctx, tenant, 5)

    class Refusing(SqlSentJournal):
        refusals = 2

        async def record_sent(self, reports: Sequence[SentReport]) -> None:
            if self.refusals:
                self.refusals -= 1
                raise OperationalError("INSERT", {}, Exception("database is locked"))
            await super().record_sent(reports)

    journal = Refusing(ctx)

    async def main() -> list[bool]:
        commit = GroupCommit(journal, retry_max=0.1)
        tasks = [asyncio.create_task(commit.record(SentReport(m, "gw", ("x",)))) for m in ids]
        await asyncio.sleep(0.02)
        early = [t.done() for t in tasks]  # refused so far: nobody may go on to acknowledge
        await asyncio.gather(*tasks)
        return early

    assert asyncio.run(main()) == [False] * 5
    assert journal.refusals == 0
    assert all(_gateway_ids(ctx, m) == "x" for m in ids)


class CountingLoopback(LoopbackGateway):
    """The real loopback channel, counting what it was asked to send."""

    def __init__(self) -> None:
        super().__init__("loop")
        self.sent: list[str] = []

    async def submit(self, message: OutboundMessage) -> SubmitResult:
        self.sent.append(message.id)
        return await super().submit(message)


def test_a_redriven_message_the_journal_knows_is_restored_not_sent(ctx, tenant, backend, unique_name) -> None:
    known, unknown = _batch(ctx, tenant, 2)
    ns = unique_name("journal-ns")
    outbox = Outbox(redis.Redis.from_url(backend.redis_url), ns, hold=0.05)
    epoch = outbox.open_epoch()
    asyncio.run(GroupCommit(SqlSentJournal(ctx)).record(SentReport(known, "loop", ("gw-1",))))
    # Redis lost its data after the peer took `known` and before the relay copied it; the re-drive read SQL
    # before the worker's journal write committed, so both come back held and without gateway ids
    assert outbox.redrive([Redrive(known, "13700000000", CONTENT), Redrive(unknown, "13700000001", CONTENT)],
                          epoch=epoch) == "dd"

    async def main() -> tuple[CountingLoopback, dict[str, str], dict[str, int]]:
        r = redis_client(backend.redis_url)
        store = MessageStore(r, ns, sent_events=False)
        gateway = CountingLoopback()
        worker = GatewayWorker(store, [Channel(gateway)], Router({"default": ["loop"]}),
                               journal=GroupCommit(SqlSentJournal(ctx)))
        await worker.start()
        await worker.run(until_idle=True)
        state = await store.state(known)
        await worker.close()
        await r.aclose()
        return gateway, state, worker.stats

    gateway, state, stats = asyncio.run(main())
    assert gateway.sent == [unknown]
    assert (state["state"], state["gw_ids"], stats["restored"]) == ("submitted", "gw-1", 1)
    assert _gateway_ids(ctx, unknown)  # the one really sent is journaled in its turn
