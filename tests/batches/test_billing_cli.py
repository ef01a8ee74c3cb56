"""``smsguard billing …`` as the operator runs it (real processes), on both backends."""

from __future__ import annotations

import json
import subprocess
import sys

from smsguard.engine import PROJECT_ROOT


def _cli(backend, *args: str, check: int = 0) -> str:
    p = subprocess.run([sys.executable, "-m", "smsguard", "billing", *args], capture_output=True, text=True,
                       cwd=PROJECT_ROOT, env=backend.env(), timeout=120)
    assert p.returncode == check, p.stderr[-2000:]
    return p.stdout if check == 0 else p.stderr


def test_operator_commands(backend, migrated_db, unique_name) -> None:
    from smsguard.storage import create_tenant

    name = create_tenant(migrated_db, unique_name("cli")).name
    out = json.loads(_cli(backend, "topup", "--tenant", name, "12.5", "--reference", "wire-7", "--memo", "bank"))
    assert out["balance"] == "12.5000" and out["entry"]["reference"] == "wire-7"
    assert json.loads(_cli(backend, "topup", "--tenant", name, "12.5", "--reference", "wire-7"))["replayed"]
    assert json.loads(_cli(backend, "adjust", "--tenant", name, "-2.5", "--memo", "duplicate wire"))["balance"] \
        == "10.0000"
    err = _cli(backend, "adjust", "--tenant", name, "-20", "--memo", "too much", check=2)
    assert "billing.insufficient_balance" in err
    assert "billing.amount" in _cli(backend, "topup", "--tenant", name, "abc", check=2)
    _cli(backend, "price", "--tenant", name, "--carrier", "mobile", "--kind", "marketing", "0.06")
    prices = json.loads(_cli(backend, "prices", "--tenant", name))["prices"]
    assert prices["marketing"]["mobile"] == "0.0600" and prices["notification"]["mobile"] == "0.0450"
    s = json.loads(_cli(backend, "settings", "--tenant", name, "--low-balance", "20", "--charge-on", "delivery"))
    assert (s["low_balance"], s["charge_on"]) == ("20.0000", "delivery")
    bal = json.loads(_cli(backend, "balance", "--tenant", name))
    assert (bal["balance"], bal["held"], bal["available"], bal["prepaid"]) == ("10.0000", "0.0000", "10.0000", True)
    items = json.loads(_cli(backend, "statement", "--tenant", name))["items"]
    assert [(e["kind"], e["balance_change"]) for e in items] == [("topup", "+12.5000"), ("adjustment", "-2.5000")]
    assert isinstance(json.loads(_cli(backend, "reconcile")), list)
    report = json.loads(_cli(backend, "verify", "--tenant", name))
    assert report["ok"] and report["topped_up"] == "10.0000"
