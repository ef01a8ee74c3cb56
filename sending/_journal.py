"""The sent journal: SQL learns that a peer took a message before the gateway acknowledges its outbox entry.

Without it, "the peer took message M" lived only in Redis (the message's hash and the events stream) until
the relay copied it to SQL. A Redis that lost its data in that window made the release step re-drive M
from SQL as never sent, and M went out twice. With a journal, a gateway worker:

1. records the submit in Redis (receipts keep finding their message), then
2. awaits :meth:`GroupCommit.record`, which returns once SQL holds the gateway ids, and only then
3. acknowledges the outbox entry.

A message re-driven after a loss is looked up in the journal (:meth:`SentJournal.sent_before`) before it
is sent: found, it is restored as submitted instead. The re-drive may read SQL a moment before another
worker's journal write commits; the re-driven message is held (``sending/_outbox.py``) for longer than a
group commit takes, and the lookup happens when the hold ends.

Concurrent submits share one SQL transaction (a group commit): a worker with a window of 64 in flight
writes tens of records per commit, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from smsguard.sending._gateway import SentReport

log = logging.getLogger(__name__)


class SentJournal(Protocol):
    """Durable record of what the peers took (``batches.SqlSentJournal`` writes the recipients' rows)."""

    async def record_sent(self, reports: Sequence[SentReport]) -> None:
        """Commit every report (idempotent: a repeat changes nothing); raise if not committed."""
        ...

    async def sent_before(self, message_ids: Sequence[str]) -> dict[str, SentReport]:
        """Of ``message_ids``, those a peer is recorded to have taken, with their gateway ids."""
        ...


class GroupCommit:
    """Coalesces concurrent :meth:`record` calls into one :meth:`SentJournal.record_sent` at a time.

    A failed write is retried with a growing pause and never dropped: its callers keep waiting, so their
    outbox entries stay un-acknowledged and the worker stops claiming more once its window is full (SQL
    down means back-pressure, not messages whose send only Redis knows)."""

    def __init__(self, journal: SentJournal, *, max_batch: int = 500, retry_max: float = 2.0) -> None:
        self.journal = journal
        self.max_batch = max_batch
        self.retry_max = retry_max
        self._pending: list[tuple[SentReport, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.commits = 0
        self.records = 0

    async def record(self, report: SentReport) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((report, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="sent-journal")
        await future

    async def sent_before(self, message_ids: Sequence[str]) -> dict[str, SentReport]:
        await self.drain()  # this process's own records first: they may still be on their way to SQL
        return await self.journal.sent_before(message_ids)

    async def drain(self) -> None:
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        pause = 0.05
        while self._pending:
            await asyncio.sleep(0)  # let the submits that finished in this turn of the loop join the commit
            group, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            live = [(r, f) for r, f in group if not f.done()]
            try:
                await self.journal.record_sent([r for r, _ in live])
            except Exception as e:  # SQL refused or unreachable: keep them, try again
                log.warning("sent journal: %d records not committed (%s); retrying in %.2fs", len(live), e, pause)
                self._pending[:0] = live
                await asyncio.sleep(pause)
                pause = min(self.retry_max, pause * 2)
                continue
            pause = 0.05
            self.commits += 1
            self.records += len(live)
            for _, f in live:
                if not f.done():
                    f.set_result(None)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(BaseException):
                await self._flusher
        for _, f in self._pending:  # their entries stay un-acked: another worker finds them submitted
            if not f.done():
                f.cancel()
        self._pending.clear()
