"""One Redis round trip for the calls that concurrent sends make in the same turn of the event loop.

A gateway worker has its whole window in flight: dozens of tasks each make a few small Redis calls per message
(begin, record the submit, apply a receipt, acknowledge the outbox entry). Made one by one, each call pays a
round trip, a pool checkout, a timeout and a lock in the client: profiled on the worker path to loopback, that
client overhead was most of the process's time (``bench/gateways.py`` (c)). :class:`Pipeliner` queues the calls
and sends everything queued as one non-transactional pipeline while the previous one is in flight; each caller
gets its own reply (or its own error) back. Every script stays atomic on its own, so what each call does is
unchanged; only calls that would have been concurrent anyway share a round trip.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError


class Pipeliner:
    def __init__(self, redis: Any, *, max_batch: int = 512) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.round_trips = 0
        self.calls = 0

    async def script(self, script: Any, keys: list[Any] | None = None, args: list[Any] | None = None) -> Any:
        """Run a registered ``redis.asyncio`` script (``redis.register_script``) in the next pipeline."""
        return await self._queue(("script", script, keys or [], args or []))

    async def command(self, *args: Any) -> Any:
        """Run one plain command, e.g. ``command("XACK", stream, group, entry_id)``."""
        return await self._queue(("command", *args))

    async def _queue(self, call: tuple[Any, ...]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((call, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="redis-pipeliner")
        return await future

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # the tasks woken in this turn add their calls first
            group, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            group = [(c, f) for c, f in group if not f.cancelled()]
            if not group:
                continue
            pipe = self.redis.pipeline(transaction=False)
            for call, _ in group:
                if call[0] == "script":  # EVALSHA alone: no SCRIPT EXISTS round trip per pipeline
                    pipe.evalsha(call[1].sha, len(call[2]), *call[2], *call[3])
                else:
                    pipe.execute_command(*call[1:])
            try:
                replies = await pipe.execute(raise_on_error=False)
            except Exception as e:  # the connection failed: every caller sees it, as it would have alone
                for _, f in group:
                    if not f.done():
                        f.set_exception(e)
                continue
            self.round_trips += 1
            self.calls += len(group)
            for (call, f), reply in zip(group, replies, strict=True):
                if f.done():
                    continue
                if isinstance(reply, NoScriptError):  # a restarted Redis: the script loads itself on a lone call
                    try:
                        f.set_result(await call[1](keys=call[2], args=call[3]))
                    except Exception as e:
                        f.set_exception(e)
                elif isinstance(reply, Exception):
                    f.set_exception(reply)
                else:
                    f.set_result(reply)
