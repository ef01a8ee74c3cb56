"""In-memory event collectors for tests and benchmarks: what an adapter reports, kept in lists."""

from __future__ import annotations

import asyncio
import contextlib
import time

from smsguard.sending import DeliveryReport, InboundMessage, Receipt, SentReport


class _Waitable:
    """``wait_for(predicate)``: re-checked after every event (and every 0.5 s), until true or timeout."""

    _changed: asyncio.Event

    async def wait_for(self, predicate: object, timeout: float = 10.0) -> None:
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("condition not met in time")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))


class MemoryEvents(_Waitable):
    """Collects raw adapter events in memory (contract tests, demos)."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.inbound: list[InboundMessage] = []
        self._changed = asyncio.Event()

    async def on_receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)
        self._changed.set()

    async def on_inbound(self, message: InboundMessage) -> None:
        self.inbound.append(message)
        self._changed.set()

class MemorySink(_Waitable):
    """An in-process :class:`EventSink` for tests: keeps reports and MO, and the opt-outs they imply."""

    def __init__(self) -> None:
        self.reports: dict[str, DeliveryReport] = {}
        self.inbound: list[InboundMessage] = []
        self.opted_out: set[str] = set()
        self.sent: dict[str, SentReport] = {}
        self._changed = asyncio.Event()

    async def on_sent(self, report: SentReport) -> None:
        self.sent[report.message_id] = report

    async def on_report(self, report: DeliveryReport) -> None:
        self.reports[report.message_id] = report
        self._changed.set()

    async def on_inbound(self, message: InboundMessage) -> None:
        self.inbound.append(message)
        if message.opt_out:
            self.opted_out.add(message.phone)
        self._changed.set()
