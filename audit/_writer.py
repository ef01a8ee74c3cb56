"""Group commit for audit rows: a request hands its rows over and is answered only after they commit.

One writer thread per process drains whatever has queued up while the previous transaction ran and
inserts it in one multi-row INSERT (plus one ``verdict`` audit event per row, chained in the same
transaction), so under load one commit carries many requests' rows, and at rest
a row is written at once. Nothing is acknowledged before it is in SQL: ``write`` returns only when its
transaction has committed and raises if it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from ._verdicts import AlsoWrite, insert_verdicts

_STOP = object()


class AuditWriter:
    def __init__(self, db: Engine, *, max_rows: int = 5000, also: AlsoWrite | None = None) -> None:
        """``also(conn, rows)`` writes what must commit together with the rows (e.g. review items)."""
        self._db = db
        self._also = also
        self._max_rows = max_rows
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="smsguard-audit-writer", daemon=True)
            self._thread.start()

    async def write(self, rows: Sequence[Sequence[Any]], *, actor: str = "api") -> None:
        """Return once ``rows`` and their ``verdict`` audit events (by ``actor``) are committed; raise what the
        commit raised."""
        if self._thread is None:
            raise RuntimeError("AuditWriter.start() was not called")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((rows, future, loop, actor))
        await future

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            count = 0 if items[0] is _STOP else len(items[0][0])
            while count < self._max_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
                if item is not _STOP:
                    count += len(item[0])
            if any(item is _STOP for item in items):
                stop = True
                items = [item for item in items if item is not _STOP]
            if not items:
                continue
            try:
                self._insert([row for r, *_ in items for row in r], [a for r, _, _, a in items for _ in r])
                results: list[BaseException | None] = [None] * len(items)
            except BaseException as e:
                if len(items) == 1:
                    results = [e]
                else:  # one request's bad row must not fail the others: retry each on its own
                    results = []
                    for rows, _, _, actor in items:
                        try:
                            self._insert(rows, [actor] * len(rows))
                            results.append(None)
                        except BaseException as each:
                            results.append(each)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, BaseException | None]]] = {}
            for (_, future, loop, _), error in zip(items, results, strict=True):
                by_loop.setdefault(loop, []).append((future, error))
            for loop, settled in by_loop.items():
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                    loop.call_soon_threadsafe(_settle, settled)

    def _insert(self, rows: list[Any], actors: list[str]) -> None:
        insert_verdicts(self._db, rows, actors, also=self._also)
        self.batches += 1
        self.rows += len(rows)


def _settle(settled: list[tuple[asyncio.Future, BaseException | None]]) -> None:
    for future, error in settled:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
