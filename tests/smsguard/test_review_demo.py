"""``smsguard review demo`` fills every queue kind its docstring promises and prints the address it serves on."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import create_engine, func, select

from smsguard.engine import PROJECT_ROOT
from smsguard.review._tables import review_items


def test_demo_fills_high_severity_four_eyes_identical_copies_signatures_and_prints_the_real_port(tmp_path) -> None:
    env = {**os.environ, "SMSGUARD_DATA_DIR": str(tmp_path), "SMSGUARD_PORT": "8765"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    proc = subprocess.run([sys.executable, "-m", "smsguard", "review", "demo", "--items", "12"], env=env,
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "http://127.0.0.1:8765/review" in proc.stdout
    db = create_engine(f"sqlite:///{tmp_path / 'smsguard.db'}")
    with db.connect() as conn:
        c = review_items.c
        high = conn.execute(select(func.count()).where(c.severity == "high", c.required_approvals == 2)).scalar()
        dup = conn.execute(select(c.content_hash, func.count()).group_by(c.content_hash)
                           .having(func.count() >= 3)).all()
        signatures = conn.execute(select(func.count()).where(c.source == "signature", c.status == "pending")).scalar()
    db.dispose()
    assert high >= 1, proc.stdout
    assert dup, "no identical copies for a bulk decision"
    assert signatures >= 1 and "signature applications" in proc.stdout, proc.stdout
