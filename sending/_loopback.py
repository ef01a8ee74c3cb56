"""A gateway that accepts everything and reports it delivered: for demos and as a benchmark baseline.

It follows the same destination-number scenarios as the real peers (``_scenarios.py``) so the
contract suite can run against it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os

from sending._gateway import (
    Gateway,
    GatewayEvents,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
    Receipt,
    SubmitResult,
    TransientGatewayError,
    inbound,
)
from sending._scenarios import MO_PREFIX, THROTTLE_TIMES, scenario

PART_CHARS = 67
SINGLE_CHARS = 70


class LoopbackGateway(Gateway):
    kind = "loopback"

    def __init__(self, name: str = "loopback", *, window: int = 64) -> None:
        super().__init__(name, window=window)
        self._ids = itertools.count(1)
        self._prefix = os.urandom(3).hex()
        self._up = False
        self._attempts: dict[tuple[str, str], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.submitted: list[OutboundMessage] = []

    @property
    def connected(self) -> bool:
        return self._up

    async def start(self, events: GatewayEvents) -> None:
        self.events = events
        self._up = True

    async def _submit(self, message: OutboundMessage) -> SubmitResult:
        if not self._up:
            raise GatewayUnavailable("not started", where=self.where)
        kind = scenario(message.phone)
        if kind == "throttle":
            key = (message.phone, message.text)
            self._attempts[key] = self._attempts.get(key, 0) + 1
            if self._attempts[key] <= THROTTLE_TIMES:
                raise TransientGatewayError("throttled", where=self.where, carrier_code="loopback:throttled")
        if kind == "reject":
            raise PermanentGatewayError("invalid number", where=self.where, carrier_code="loopback:rejected")
        n = 1 if len(message.text) <= SINGLE_CHARS else -(-len(message.text) // PART_CHARS)
        ids = tuple(f"{self._prefix}{next(self._ids):08x}" for _ in range(n))
        self.submitted.append(message)
        status, code = {"undeliv": ("failed", "UNDELIV"), "expired": ("expired", "EXPIRED")}.get(
            kind, ("delivered", "DELIVRD")
        )
        task = asyncio.create_task(self._report(message, ids, status, code))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return SubmitResult(message.id, self.name, ids)

    async def _report(self, message: OutboundMessage, ids: tuple[str, ...], status: str, code: str) -> None:
        for gateway_id in ids:
            await self.events.on_receipt(Receipt(self.name, gateway_id, message.phone, status, code))  # type: ignore[arg-type]
        if message.text.startswith(MO_PREFIX):
            reply = message.text[len(MO_PREFIX) :]
            await self.events.on_inbound(inbound(message.phone, reply, self.name, message.sender))

    async def close(self) -> None:
        self._up = False
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
