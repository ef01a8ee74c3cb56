"""A gateway that accepts everything and reports it delivered: for demos and as a benchmark baseline.

Destination numbers pick a behaviour (:func:`scenario`), the same table the test peers
(``tests/sending/sending_peers``) follow, so one contract suite drives all of them and a demo can show
every outcome: ``…9001`` throttled twice then accepted, ``…9002`` refused, ``…9003`` undelivered,
``…9004`` expired; a text starting ``MO:`` makes the handset reply with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from typing import Literal

from smsguard.sending._gateway import (
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

Scenario = Literal["throttle", "reject", "undeliv", "expired", "ok"]

THROTTLE_TIMES = 2  # a "throttle" number is refused this many times per text, then accepted
MO_PREFIX = "MO:"  # a text starting with this makes the simulated handset reply with the rest


def scenario(phone: str) -> Scenario:
    """The behaviour a destination number asks for (by its last four digits)."""
    return {"9001": "throttle", "9002": "reject", "9003": "undeliv", "9004": "expired"}.get(phone[-4:], "ok")  # type: ignore[return-value]


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
