"""``smsguard serve`` signs and anchors a checkpoint at start-up, so a restart never waits an interval for one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from serve_support import free_port, serve, wait_ready

from smsguard.engine import PROJECT_ROOT


def _anchored(directory: Path) -> list[int]:
    return [json.loads(p.read_text())["event_id"] for p in sorted(directory.glob("checkpoint-*.json"))]


def test_serve_anchors_a_checkpoint_at_every_start(backend, fresh_db, filler, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors"
    env = backend.env(DATABASE_URL=fresh_db.url.render_as_string(hide_password=False),
                      SMSGUARD_AUDIT_ANCHOR_DIR=str(anchors))
    filler(fresh_db, 5)
    for expected in ([5], [5, 8]):
        port = free_port()
        log = tmp_path / f"serve-{len(expected)}.log"
        with serve(env, port, log) as proc:
            wait_ready(port, proc, log, timeout=60)
            assert _anchored(anchors) == expected, log.read_text(errors="replace")
        filler(fresh_db, 3)
    r = subprocess.run([sys.executable, "-m", "smsguard", "audit", "verify", "--anchors", str(anchors)], env=env,
                       cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "OK" in r.stdout and "2 anchor file(s)" in r.stdout, r.stdout + r.stderr
