"""Retry with exponential backoff and jitter for transient gateway errors."""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """``delay(n)`` before the n-th retry (n ≥ 1): base × factor^(n-1), capped, ± jitter (a fraction).

    ``max_attempts`` counts submits of one message on ONE channel; after that the worker fails over.
    """

    max_attempts: int = 5
    base: float = 0.2
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.2

    def delay(self, retry: int) -> float:
        raw = min(self.max_delay, self.base * self.factor ** max(0, retry - 1))
        return max(0.0, raw * (1 + random.uniform(-self.jitter, self.jitter)))
