"""Password hashes: argon2id (argon2-cffi) with OWASP's recommended minimum: 19 MiB, 2 passes, 1 lane.

Not the library's default (64 MiB, 3 passes, 4 lanes): that one costs ~0.15 s of CPU over four threads per
check, so on a 2-core host a login flood from many addresses took screening down to 51-69 % of its
throughput (issue 15). One lane at 19 MiB is ~0.02 s on one core, which the OWASP Password Storage Cheat
Sheet lists as equivalent in strength for argon2id. Hashes made with stronger parameters still verify and
are not weakened at the next login (``needs_rehash``).

Only the hash is ever stored. A login for a name nobody has still runs one verification (against a dummy
hash), so an unknown name takes as long as a wrong password: no user enumeration by timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

MIN_PASSWORD = 8
"""The shortest password an account may be given."""

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash. ``None`` (no such account) costs a verification all the
    same and is never a match; a malformed stored hash is no match either."""
    try:
        _hasher.verify(_DUMMY_HASH if stored is None else stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


def needs_rehash(stored: str) -> bool:
    """The hasher's parameters were raised since ``stored`` was made: hash the password again at its next login.
    A hash that is at least as costly in memory and passes is kept (no downgrade of older, stronger hashes)."""
    try:
        made = extract_parameters(stored)
    except InvalidHashError:
        return True
    current = _hasher  # the parameters new hashes get
    return made.type != current.type or made.memory_cost < current.memory_cost or made.time_cost < current.time_cost


class HashingBusy(Exception):
    """Too many log-ins are waiting for a password check already: answer "try again shortly", hash nothing."""


class HashingPool:
    """Password checks off the event loop, in a few threads of their own at the lowest CPU priority.

    argon2id costs ~0.02 s of CPU per check (19 MiB, 1 lane) and releases the GIL, so a burst of log-ins would
    take every core from screening. Here at most ``threads`` checks run at once, at most ``waiting`` more wait,
    and at most ``per_second`` start per second (a bucket of ``burst``): beyond either, HashingBusy at once, so a
    flood from many addresses (which the throttle cannot tell apart) costs at most ``per_second`` checks a second:
    6 x 0.02 s is an eighth of a core, a quarter of what 3 checks a second cost with the library default.
    The threads run at nice 19: the scheduler gives screening the CPU first and log-ins what is left.
    """

    def __init__(self, threads: int = 2, waiting: int = 16, per_second: float = 6.0, burst: int = 30) -> None:
        self.threads = threads
        self.waiting = waiting
        self.per_second = per_second
        self.burst = burst
        self._executor: ThreadPoolExecutor | None = None
        self._admitted = 0  # running + waiting; only touched on the event loop's thread
        self._tokens = float(burst)
        self._refilled = time.monotonic()

    def _take_token(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.per_second)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._admitted >= self.threads + self.waiting or not self._take_token():
            raise HashingBusy
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, "password-hash", initializer=_lowest_priority)
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))
        finally:
            self._admitted -= 1


def _lowest_priority() -> None:
    """Linux: ``setpriority`` on a thread id renices that thread alone (and the threads argon2 starts from it)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


POOL = HashingPool()
"""The process's pool: both web UIs share it, so together they never check more than two passwords at once."""
