"""One Redis round trip for the calls that concurrent sends make in the same turn of the event loop.

A gateway worker has its whole window in flight: dozens of tasks each make a few small Redis calls per message
(begin, record the submit, apply a receipt, acknowledge the outbox entry). Made one by one, each call pays a
round trip, a pool checkout, a timeout and a lock in the client: profiled on the worker path to loopback, that
client overhead was most of the process's time (``bench/gateways.py`` (c)). :class:`Pipeliner` queues the calls
and sends everything queued as one non-transactional pipeline while the previous one is in flight; each caller
gets its own reply (or its own error) back. Every script stays atomic on its own, so what each call does is
unchanged; only calls that would have been concurrent anyway share a round trip.

Sharing the round trip still left one command per call to pack, send, run and parse: at ~1,000 msgs/s the
client's per-command work (``pack_command``, the reply parser, a future each) was the largest item of the
gateway thread (py-spy, ``bench/pipeline.py``). So the hot calls go further:

* :class:`BatchScript` — a Lua function applied to many items in ONE ``EVALSHA`` (one per pipeline for all the
  calls of that script queued in the turn). Each item runs under ``pcall``: one that fails gets its own error
  and the others their results, as when each was a script of its own. Redis runs the whole call atomically, which
  is stronger than each item alone; the items of one call are independent (concurrent callers), so their order
  within it carries no meaning.
* :meth:`Pipeliner.merged` — a command that takes many members (``XACK stream group id…``, ``XDEL stream id…``):
  the members queued in one turn go as one command, every caller gets its reply.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

_FAILED = "\x00err:"  # prefix of an item's error in a BatchScript reply: no item's result starts with it

_EACH = """
local out, i, n = {}, 1, #ARGV
while i <= n do
  local k = tonumber(ARGV[i])
  local ok, res = pcall(one, unpack(ARGV, i + 1, i + k))
  if not ok then
    if type(res) == 'table' then res = res.err or 'error' end
    res = '\\0err:' .. tostring(res)
  end
  out[#out + 1] = res
  i = i + k + 1
end
return out
"""


class BatchScript:
    """``lua`` defines ``local function one(...)`` (one item's arguments, strings as in ARGV; it returns a string);
    each pipeline runs every item queued for it in one ``EVALSHA``. Keys are built inside the function from
    its arguments (the store's scripts already do so: see README, "Redis Cluster: not yet")."""

    def __init__(self, redis: Any, lua: str) -> None:
        self.script = redis.register_script(lua + _EACH)


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

    async def batch(self, script: BatchScript, args: list[Any]) -> Any:
        """One item of ``script``; raises ``ResponseError`` with the item's own error."""
        reply = await self._queue(("batch", script, args))
        if isinstance(reply, bytes) and reply.startswith(b"\x00err:"):
            raise ResponseError(reply[len(_FAILED):].decode(errors="replace"))
        if isinstance(reply, str) and reply.startswith(_FAILED):
            raise ResponseError(reply[len(_FAILED):])
        return reply

    def merged(self, *prefix_and_members: Any, members: int) -> asyncio.Future[Any]:
        """Queue the command whose last ``members`` arguments are members: every call with the same other
        arguments in this turn is sent as one command; the future gets that command's reply."""
        prefix, items = prefix_and_members[:-members], prefix_and_members[-members:]
        return self._enqueue(("merged", prefix, items))

    def _enqueue(self, call: tuple[Any, ...]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((call, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="redis-pipeliner")
        return future

    async def _queue(self, call: tuple[Any, ...]) -> Any:
        return await self._enqueue(call)

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # the tasks woken in this turn add their calls first
            group, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            group = [(c, f) for c, f in group if not f.cancelled()]
            if not group:
                continue
            await self._send(group)

    async def _send(self, group: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        # what each reply answers: (kind, futures, extra)
        slots: list[tuple[str, Any, Any]] = []
        batches: dict[int, tuple[BatchScript, list[Any], list[asyncio.Future[Any]]]] = {}
        merged: dict[tuple[Any, ...], tuple[list[Any], list[asyncio.Future[Any]]]] = {}
        for call, f in group:
            kind = call[0]
            if kind == "batch":
                entry = batches.get(id(call[1]))
                if entry is None:
                    entry = batches[id(call[1])] = (call[1], [], [])
                    slots.append(("batch", entry, None))
                entry[1].append(len(call[2]))
                entry[1].extend(call[2])
                entry[2].append(f)
            elif kind == "merged":
                got = merged.get(call[1])
                if got is None:
                    got = merged[call[1]] = ([], [])
                    slots.append(("merged", got, call[1]))
                got[0].extend(call[2])
                got[1].append(f)
            else:
                slots.append((kind, f, call))
        for kind, target, extra in slots:
            if kind == "batch":
                script, argv, _ = target
                pipe.evalsha(script.script.sha, 0, *argv)  # EVALSHA alone: no SCRIPT EXISTS round trip
            elif kind == "merged":
                pipe.execute_command(*extra, *target[0])
            elif kind == "script":
                pipe.evalsha(extra[1].sha, len(extra[2]), *extra[2], *extra[3])
            else:
                pipe.execute_command(*extra[1:])
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as e:  # the connection failed: every caller sees it, as it would have alone
            for _, f in group:
                if not f.done():
                    f.set_exception(e)
            return
        self.round_trips += 1
        self.calls += len(group)
        for (kind, target, extra), reply in zip(slots, replies, strict=True):
            if kind == "batch":
                script, argv, futures = target
                if isinstance(reply, NoScriptError):  # a restarted Redis: the script loads itself on a lone call
                    try:
                        reply = await script.script(keys=[], args=argv)
                    except Exception as e:
                        reply = e
                if isinstance(reply, Exception):
                    for f in futures:
                        if not f.done():
                            f.set_exception(reply)
                    continue
                for f, one in zip(futures, reply, strict=True):
                    if not f.done():
                        f.set_result(one)
            elif kind == "merged":
                for f in target[1]:
                    if f.done():
                        continue
                    if isinstance(reply, Exception):
                        f.set_exception(reply)
                    else:
                        f.set_result(reply)
            else:
                f = target
                if f.done():
                    continue
                if isinstance(reply, NoScriptError):
                    try:
                        f.set_result(await extra[1](keys=extra[2], args=extra[3]))
                    except Exception as e:
                        f.set_exception(e)
                elif isinstance(reply, Exception):
                    f.set_exception(reply)
                else:
                    f.set_result(reply)
