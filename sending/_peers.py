"""Start the local peers as real separate processes on 127.0.0.1 (tests, benchmarks, demos).

* SMPP: ``node tests/sending/smpp_peer/server.js`` (npm's ``smpp`` package; ``npm ci`` on first use);
* CMPP: ``python -m sending._cmpp_simulator``;
* HTTP: ``python -m sending._http_simulator``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMPP_PEER_DIR = ROOT / "tests" / "sending" / "smpp_peer"

CMPP_ACCOUNT = ("901234", "secret")
SMPP_ACCOUNT = ("smsguard", "secret")
HTTP_TOKEN = "secret"


class PeerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_smpp_peer() -> Path:
    """Install the SMPP peer's npm dependencies (pinned by its package-lock.json) if missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise PeerError("node and npm are needed for the SMPP peer (apt-get install nodejs npm)")
    if not (SMPP_PEER_DIR / "node_modules" / "smpp").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SMPP_PEER_DIR, check=True, timeout=300
        )
    return SMPP_PEER_DIR / "server.js"


class Peer:
    """A peer process; ``kill()`` is SIGKILL (a crash), ``stop()`` a polite SIGTERM."""

    def __init__(self, kind: str, argv: list[str], port: int) -> None:
        self.kind, self.argv, self.port = kind, argv, port
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> Peer:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    return self
                if not line and self.proc.poll() is not None:
                    break
        err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        self.kill()
        raise PeerError(f"{self.kind} peer did not start on port {self.port}: {err.strip()[-500:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                with contextlib.suppress(Exception):
                    stream.close()  # type: ignore[union-attr]

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def smpp_peer(port: int | None = None, journal: Path | None = None) -> Peer:
    port = port or free_port()
    argv = ["node", str(ensure_smpp_peer()), "--port", str(port), "--system-id", SMPP_ACCOUNT[0]]
    argv += ["--password", SMPP_ACCOUNT[1]]
    if journal:
        argv += ["--journal", str(journal)]
    return Peer("smpp", argv, port)


def cmpp_peer(port: int | None = None, journal: Path | None = None, active_test: float = 0.0) -> Peer:
    port = port or free_port()
    argv = [sys.executable, "-m", "sending._cmpp_simulator", "--port", str(port), "--account", ":".join(CMPP_ACCOUNT)]
    if journal:
        argv += ["--journal", str(journal)]
    if active_test:
        argv += ["--active-test", str(active_test)]
    return Peer("cmpp", argv, port)


def http_peer(port: int | None = None, journal: Path | None = None) -> Peer:
    port = port or free_port()
    argv = [sys.executable, "-m", "sending._http_simulator", "--port", str(port), "--token", HTTP_TOKEN]
    if journal:
        argv += ["--journal", str(journal)]
    return Peer("http", argv, port)
