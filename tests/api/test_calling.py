"""``docs/calling.md`` works as written (issue 17, point 6): its curl, Python (httpx) and Java (java.net.http)
snippets run against a real ``smsguard serve`` on the embedded defaults, with the key it prints at first
start in ``$KEY``; only the address is changed to the test server's port. The Java snippet is compiled with
the JDK's ``javac`` and skipped, saying so, where there is none."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_support import free_port, serve, wait_ready

from smsguard.engine import PROJECT_ROOT

PAGE = PROJECT_ROOT / "docs" / "calling.md"
DOC_BASE = "http://localhost:8000"


def _snippet(language: str) -> str:
    [code] = re.findall(rf"```{language}\n(.*?)```", PAGE.read_text("utf-8"), flags=re.S)
    return code


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, environment with KEY) of a running ``smsguard serve``."""
    root = tmp_path_factory.mktemp("calling")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env["SMSGUARD_DATA_DIR"] = str(root / "var")
    port, log = free_port(), root / "serve.log"
    with serve(env, port, log) as proc:
        wait_ready(port, proc, log, timeout=90)
        [key] = re.findall(r"sg_[A-Za-z0-9_-]{43}", log.read_text())[:1]
        yield f"http://127.0.0.1:{port}", {**env, "KEY": key}


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_curl_snippet(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = server
    script = _snippet("sh").replace(DOC_BASE, base)
    out = _run(["bash", "-euo", "pipefail", "-c", script], env, tmp_path)
    answers = [json.loads(line) for line in out.replace("}{", "}\n{").splitlines() if line.strip()]
    screen, upload, raw, batch = answers  # curl prints each JSON answer; --fail-with-body fails on a 4xx
    assert screen["decision"] == "pass"
    assert upload["valid"] == raw["valid"] == 2 and upload["columns"] == ["name"]
    assert batch["state"] == "draft"


def test_python_snippet(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = server
    (tmp_path / "snippet.py").write_text(_snippet("python").replace(DOC_BASE, base), "utf-8")
    lines = _run([sys.executable, "snippet.py"], env, tmp_path).splitlines()
    assert lines[0] == "a pass []"
    assert lines[1].startswith("b block [") and "'lexicon.gambling'" in lines[1]
    assert re.fullmatch(r"list \d+ valid: 2", lines[2]), lines
    assert re.fullmatch(r"batch \d+ draft", lines[3]), lines
    assert lines[4] == "400 input.empty_text $.text", lines


def test_java_snippet(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no JDK here (javac, java): the Java snippet of docs/calling.md is not compiled")
    base, env = server
    (tmp_path / "Main.java").write_text(_snippet("java").replace(DOC_BASE, base), "utf-8")
    _run(["javac", "-encoding", "UTF-8", "Main.java"], env, tmp_path)
    out = _run(["java", "-Dstdout.encoding=UTF-8", "-cp", ".", "Main"], env, tmp_path).splitlines()
    assert out[0].startswith("200 ") and json.loads(out[0][4:])["decision"] == "pass"
    assert out[1].startswith("201 ") and json.loads(out[1][4:])["valid"] == 2
