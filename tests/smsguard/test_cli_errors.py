"""An ordinary mistake on the command line is one line on stderr, ``smsguard: where: message [code]``, and
exit 2: never a traceback. Table-driven over the real console script (``python -m smsguard``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smsguard.core import PROJECT_ROOT


@dataclass
class Case:
    args: list[str]
    code: str
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


def _dir_as_file(tmp: Path) -> None:
    (tmp / "a-directory").mkdir()


CASES = {
    "missing file": Case(["screen", "/nonexistent/messages.txt"], "[file.not_found]"),
    "unreadable file": Case(["screen", "{tmp}/a-directory"], "[file.unreadable]", setup=_dir_as_file),
    "bad budget": Case(["batch", "budget", "abc", "--tenant", "t"], "[cli.usage]"),
    "bad schedule": Case(["batch", "create", "--tenant", "t", "--schedule-at", "tomorrow"], "[cli.usage]"),
    "unknown option": Case(["screen", "--bogus"], "[cli.usage]"),
    "no terminal for a password": Case(["user", "create", "rita", "--role", "reviewer"], "[cli.no_terminal]"),
    "bad setting": Case(["tenant", "list"], "[settings.invalid]", env={"SMSGUARD_PORT": "eighty"}),
    "PostgreSQL down": Case(["tenant", "list"], "[unavailable.database]",
                            env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}),
    "Redis down": Case(["batch", "worker", "--until-idle"], "[unavailable.redis]",
                       env={"REDIS_URL": "redis://127.0.0.1:1/0"}),
    "secrets missing": Case(["serve", "--port", "0"], "[settings.secrets_missing]",
                            env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}),
    "port in use": Case(["serve", "--port", "{busy}"], "[serve.port_in_use]"),
}


def _env(tmp: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env.update(SMSGUARD_DATA_DIR=str(tmp / "data"), SMSGUARD_MODEL="none", PYTHONIOENCODING="utf-8", **extra)
    return env


@pytest.mark.parametrize("name", list(CASES))
def test_an_ordinary_mistake_is_one_line_with_a_code_and_exit_2(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    if case.setup:
        case.setup(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = [a.format(tmp=tmp_path, busy=busy.getsockname()[1]) for a in case.args]
        r = subprocess.run([sys.executable, "-m", "smsguard", *args], env=_env(tmp_path, case.env),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("smsguard: ") and lines[0].endswith(case.code), r.stderr
    assert "Traceback" not in r.stderr and "serving on" not in r.stdout  # "serving on" only once bound


def test_version() -> None:
    r = subprocess.run([sys.executable, "-m", "smsguard", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("smsguard ")


def test_until_idle_exits_2_when_a_worker_dies(tmp_path: Path) -> None:
    """The gateway worker stops (this data dir's phone key no longer opens the batch's sealed numbers, as when a
    host has another host's key): `console loopback --until-idle` stops the others and says so, never hangs."""
    env = _env(tmp_path, {})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "smsguard", *args], env=env, capture_output=True, text=True,
                              cwd=PROJECT_ROOT, timeout=120)

    assert cli("tenant", "create", "t").returncode == 0
    (tmp_path / "numbers.txt").write_text("13800000001\n13800000002\n")
    made = cli("batch", "create", "--tenant", "t", "--content", "【示例商城】您的快递已到驿站，请及时取件。",
               "--numbers", str(tmp_path / "numbers.txt"))
    assert made.returncode == 0, made.stderr
    (tmp_path / "data" / "phone.key").write_bytes(os.urandom(32))
    r = cli("console", "loopback", "--until-idle")
    lines = r.stderr.strip().splitlines()  # (the release worker may log that it rebuilds the outbox first)
    assert r.returncode == 2 and lines[-1].startswith("smsguard: ") and lines[-1].endswith("[worker.died]"), r.stderr
    assert "InvalidTag" in lines[-1] and "Traceback" not in r.stderr
