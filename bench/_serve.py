"""What the benchmarks that run a real ``smsguard serve`` share: an environment of their own, a tenant's key,
the server started, awaited on ``/readyz`` and stopped. Imported by the scripts beside it (``bench/`` is on
``sys.path`` when one runs as ``python bench/<name>.py``)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SMSGUARD = [sys.executable, "-m", "smsguard"]
_KEY = re.compile(r"sg_[A-Za-z0-9_-]{43}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(data_dir: Path | str) -> dict[str, str]:
    """This process's environment without any smsguard setting (embedded SQLite and Redis), data in ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env["SMSGUARD_DATA_DIR"] = str(data_dir)
    return env


def cli(env: Mapping[str, str], *args: str) -> str:
    """``smsguard <args>``'s output (it must succeed)."""
    return subprocess.run(
        [*SMSGUARD, *args], env=dict(env), check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout


def tenant_key(env: Mapping[str, str], name: str = "bench", *, rate_limit: int | None = 100_000_000) -> str:
    """Create tenant ``name`` and return the admin API key the command prints once."""
    limit = ["--rate-limit", str(rate_limit)] if rate_limit is not None else []
    return _KEY.search(cli(env, "tenant", "create", name, *limit))[0]  # type: ignore[index]


@contextmanager
def serve(
    env: Mapping[str, str], port: int, *, log: Path | None = None, timeout: float = 60.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``smsguard serve --port <port>`` (output to ``log``, or dropped), yielding its base URL and process once
    ``/readyz`` answers 200; stopped on exit. A server that exits or is not ready in ``timeout`` s ends the bench."""
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [*SMSGUARD, "serve", "--port", str(port)], env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"serve did not become ready in {timeout:g} s" + (f"; see {log}" if log else ""))
            time.sleep(0.05)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not None:
            out.close()  # type: ignore[union-attr]
