"""Start the local peers as real separate processes on 127.0.0.1 (tests, benchmarks, demos).

* SMPP: ``node tests/sending/smpp_peer/server.js`` (npm's ``smpp`` package; ``npm ci`` on first use);
* CMPP 2.0/3.0: ``python -m sending_peers.cmpp_simulator``; SGIP 1.2: ``sending_peers.sgip_simulator``;
  SMGP 3.0: ``sending_peers.smgp_simulator``; HTTP: ``sending_peers.http_simulator``;
* CMPP from an independent implementation: see ``tests/sending/test_cmpp_interop.py``.
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

from sending_peers.script import Script
from smsguard.core import PeerError

ROOT = Path(__file__).resolve().parents[3]
PEERS_PATH = Path(__file__).resolve().parents[1]  # tests/sending: where ``sending_peers`` lives
SMPP_PEER_DIR = PEERS_PATH / "smpp_peer"

CMPP_ACCOUNT = ("901234", "secret")
SMGP_ACCOUNT = ("10690001", "secret")
SGIP_ACCOUNT = ("sp", "secret")
SGIP_NODE = 3010012345  # 3 + area code 0100 + corp 12345: the form the SGIP spec gives an SP's node id
SMPP_ACCOUNT = ("smsguard", "secret")
HTTP_TOKEN = "secret"


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

    def __init__(self, kind: str, argv: list[str], port: int, sp_port: int = 0) -> None:
        self.kind, self.argv, self.port = kind, argv, port
        self.sp_port = sp_port  # SGIP: the SP's listener this SMG connects back to
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> Peer:
        path = os.pathsep.join([str(PEERS_PATH), str(ROOT), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONPATH": path}
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


def smpp_peer(port: int | None = None, journal: Path | None = None, receipt_id: str = "same") -> Peer:
    port = port or free_port()
    argv = ["node", str(ensure_smpp_peer()), "--port", str(port), "--system-id", SMPP_ACCOUNT[0]]
    argv += ["--receipt-id", receipt_id]
    argv += ["--password", SMPP_ACCOUNT[1]]
    if journal:
        argv += ["--journal", str(journal)]
    return Peer("smpp", argv, port)


def cmpp_peer(
    port: int | None = None,
    journal: Path | None = None,
    active_test: float = 0.0,
    max_version: int = 0x30,
    script: Script | None = None,
) -> Peer:
    port = port or free_port()
    argv = [sys.executable, "-m", "sending_peers.cmpp_simulator", "--port", str(port),
            "--account", ":".join(CMPP_ACCOUNT)]
    if journal:
        argv += ["--journal", str(journal)]
    if active_test:
        argv += ["--active-test", str(active_test)]
    argv += ["--max-version", hex(max_version), *(script or Script()).argv()]
    return Peer("cmpp", argv, port)


def http_peer(port: int | None = None, journal: Path | None = None) -> Peer:
    port = port or free_port()
    argv = [sys.executable, "-m", "sending_peers.http_simulator", "--port", str(port), "--token", HTTP_TOKEN]
    if journal:
        argv += ["--journal", str(journal)]
    return Peer("http", argv, port)


def smgp_peer(port: int | None = None, script: Script | None = None) -> Peer:
    port = port or free_port()
    argv = [sys.executable, "-m", "sending_peers.smgp_simulator", "--port", str(port),
            "--account", ":".join(SMGP_ACCOUNT), *(script or Script()).argv()]
    return Peer("smgp", argv, port)


def sgip_peer(port: int | None = None, sp_port: int | None = None, script: Script | None = None) -> Peer:
    port, sp_port = port or free_port(), sp_port or free_port()
    argv = [sys.executable, "-m", "sending_peers.sgip_simulator", "--port", str(port), "--sp-port", str(sp_port),
            "--account", ":".join(SGIP_ACCOUNT), *(script or Script()).argv()]
    return Peer("sgip", argv, port, sp_port)
