"""docs/configuration.md is generated from the code: a variable or policy key missing from it fails here."""

from __future__ import annotations

from smsguard.cli import main
from smsguard.commands.config import POLICY_KEYS, REFERENCE, policy_keys, render_reference
from smsguard.core import VARIABLES


def test_every_policy_key_has_a_meaning() -> None:
    keys = [k for k, _, _ in policy_keys()]
    assert [k for k in keys if k not in POLICY_KEYS] == []
    assert [k for k in POLICY_KEYS if k not in keys] == []  # nothing documented that the policy lacks


def test_the_reference_lists_every_variable_and_key_and_is_up_to_date() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    assert [v.name for v in VARIABLES if f"| `{v.name}` |" not in text] == []
    assert [k for k, _, _ in policy_keys() if f"| `{k}` |" not in text] == []
    assert text == render_reference(), "run `smsguard config reference`"
    assert main(["config", "reference", "--check"]) == 0
