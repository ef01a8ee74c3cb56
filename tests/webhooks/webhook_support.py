"""The test receiver process and dispatchers running in threads (the real ``Dispatcher``, as the ``webhooks``
role runs it), shared by the webhooks tests and ``bench/webhooks.py``."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

RECEIVER = Path(__file__).with_name("receiver.py")


class Receiver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(RECEIVER)], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("listening "):
            self.proc.kill()
            raise RuntimeError(f"receiver did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.base, timeout=10)

    def url(self, path: str) -> str:
        return self.base + path

    def script(self, path: str, actions: list[str], default: str | None = None) -> None:
        spec: dict[str, Any] = {"path": path, "actions": actions}
        if default is not None:
            spec["default"] = default
        self.http.post("/_script", json=spec).raise_for_status()

    def log(self, path: str | None = None) -> list[dict[str, Any]]:
        return self.http.get("/_log", params={"path": path} if path else None).json()

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def dispatchers(db: Any, count: int = 1, **kwargs: Any) -> Iterator[list[Any]]:
    """``count`` real dispatchers (one thread and event loop each), stopped on exit."""
    from smsguard._roles import run_async
    from smsguard.webhooks import Dispatcher

    stop = threading.Event()
    kwargs.setdefault("poll", 0.05)
    kwargs.setdefault("allow_private", True)  # the receiver listens on 127.0.0.1
    ds = [Dispatcher(db, worker_id=f"test-{i}-{time.monotonic_ns()}", **kwargs) for i in range(count)]
    threads = [threading.Thread(target=run_async, args=(stop, d.run), daemon=True) for d in ds]
    for t in threads:
        t.start()
    try:
        yield ds
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
