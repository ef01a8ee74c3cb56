"""A per-channel circuit breaker: opens when the error rate over the last calls passes a threshold
(or at once when the gateway is down), lets one probe through after ``open_for`` seconds, and closes
again when the probe succeeds."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        *,
        error_rate: float = 0.5,
        window: int = 50,
        min_calls: int = 10,
        open_for: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.error_rate = error_rate
        self.min_calls = min_calls
        self.open_for = open_for
        self._clock = clock
        self._outcomes: collections.deque[bool] = collections.deque(maxlen=window)
        self._state: State = "closed"
        self._opened_at = 0.0
        self._probing = False
        self.opened = 0  # how many times it opened (metrics, tests)

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.open_for:
            self._state = "half_open"
            self._probing = False
        return self._state

    def allow(self) -> bool:
        """May a submit go through now? In half-open state only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        if self._state == "half_open":
            self._state = "closed"
            self._outcomes.clear()
        self._probing = False
        self._outcomes.append(True)

    def failure(self, *, down: bool = False) -> None:
        """Record an error; ``down`` (not connected) opens the circuit at once."""
        self._probing = False
        if self._state == "half_open" or down:
            self._open()
            return
        self._outcomes.append(False)
        n = len(self._outcomes)
        if n >= self.min_calls and self._outcomes.count(False) / n >= self.error_rate:
            self._open()

    def _open(self) -> None:
        if self._state != "open":
            self.opened += 1
        self._state = "open"
        self._opened_at = self._clock()
        self._outcomes.clear()
