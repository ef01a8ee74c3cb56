"""Real ``smsguard serve`` processes for the tests that need one (API processes, console, reviewer UI):
start one with its output in a log file, wait until ``/readyz`` answers, stop it however it is doing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from smsguard.engine import PROJECT_ROOT

SMSGUARD = [sys.executable, "-m", "smsguard"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """``smsguard <args>`` with stdout and stderr in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([*SMSGUARD, *args], env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                cwd=PROJECT_ROOT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serve(env: Mapping[str, str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    """``smsguard serve --port <port>``, stopped on exit."""
    proc = start(["serve", "--port", str(port)], env, log)
    try:
        yield proc
    finally:
        stop(proc)


def wait_ready(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> float:
    """Seconds until /readyz answers 200; the test fails with the log if the process exits or takes too long.
    A hang detector, not a speed test (bench/startup.py measures that): a start takes 10-17 s at load 15 here."""
    start_at = time.monotonic()
    while time.monotonic() - start_at < timeout:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - start_at
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    pytest.fail(f"not ready after {timeout} s:\n{log.read_text(errors='replace')}")
