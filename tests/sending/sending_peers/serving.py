"""How a simulator process runs: start, print ``READY <port>`` (what ``processes.Peer`` waits for), serve
until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable


async def _serve(start: Callable[[], Awaitable[int]]) -> None:
    print(f"READY {await start()}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


def serve(start: Callable[[], Awaitable[int]]) -> None:
    """Run ``start()`` (returns the port it listens on) in a new event loop until told to stop."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(start))
