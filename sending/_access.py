"""What the CMPP and SMPP servers for customers share beyond their PDUs: the reports owed for a refused long
message, and the keep-alive of an idle bind."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


async def owe_rejected(handler: Any, whole: Any, report: Callable[[int], None]) -> None:
    """Each part of ``whole`` (a long message whose parts were all answered 0) gets a REJECTD report. A handler
    with ``on_refused`` keeps them in SQL until a bind takes them (they survive a restart); otherwise they go
    through ``report`` (over a bind now, or in the server's memory until one)."""
    keep = getattr(handler, "on_refused", None)
    if keep is not None:
        await keep(whole, "REJECTD")
        return
    for part_id in whole.msg_ids:
        report(part_id)


class Liveness:
    """When the peer was last heard from (any PDU counts: it proves the link carries traffic)."""

    __slots__ = ("heard",)

    def __init__(self) -> None:
        self.heard = time.monotonic()

    def touch(self) -> None:
        self.heard = time.monotonic()


async def keep_alive(
    live: Liveness, writer: Any, probe: Callable[[], None], *, every: float, timeout: float, name: str
) -> None:
    """After ``every`` seconds without a PDU from the peer, ``probe`` it (enquire_link / CMPP_ACTIVE_TEST); if
    nothing comes back within ``timeout`` seconds, drop the connection (its reader then ends the session, and
    what it was owed stays in SQL). ``every`` 0 disables this."""
    if every <= 0:
        return
    while not writer.is_closing():
        idle = time.monotonic() - live.heard
        if idle < every:
            await asyncio.sleep(every - idle)
            continue
        asked = time.monotonic()
        probe()
        await asyncio.sleep(timeout)
        if live.heard < asked and not writer.is_closing():
            log.info("%s: no answer to a keep-alive within %.0f s, dropping the connection", name, timeout)
            writer.transport.abort()  # a dead peer never reads: close() would wait on the unsent buffer
            return
