"""The audit-anchoring and reload-gate settings: defaults, ``off``, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsguard.core import SettingsError, load_settings


def test_anchor_dir_defaults_into_the_data_dir_and_can_be_off() -> None:
    s = load_settings({"SMSGUARD_DATA_DIR": "/srv/sg"})
    assert s.anchor_dir == Path("/srv/sg/audit-anchors") and s.audit_witness_url is None
    assert load_settings({"SMSGUARD_AUDIT_ANCHOR_DIR": "off"}).anchor_dir is None
    assert load_settings({"SMSGUARD_AUDIT_ANCHOR_DIR": "/mnt/w"}).anchor_dir == Path("/mnt/w")
    s = load_settings({"SMSGUARD_RELOAD_MAX_FLIP_RATE": "0.01", "SMSGUARD_RELOAD_DIFF_DAYS": "3"})
    assert (s.reload_max_flip_rate, s.reload_diff_days) == (0.01, 3.0)
    assert load_settings({}).reload_max_flip_rate is None


@pytest.mark.parametrize(("env", "where"), [
    ({"SMSGUARD_AUDIT_WITNESS_URL": "ftp://x"}, "SMSGUARD_AUDIT_WITNESS_URL"),
    ({"SMSGUARD_RELOAD_MAX_FLIP_RATE": "5%"}, "SMSGUARD_RELOAD_MAX_FLIP_RATE"),
    ({"SMSGUARD_RELOAD_MAX_FLIP_RATE": "1.5"}, "SMSGUARD_RELOAD_MAX_FLIP_RATE"),
    ({"SMSGUARD_RELOAD_DIFF_DAYS": "0"}, "SMSGUARD_RELOAD_DIFF_DAYS"),
    ({"SMSGUARD_RELOAD_DIFF_DAYS": "week"}, "SMSGUARD_RELOAD_DIFF_DAYS"),
])
def test_bad_values_name_the_variable(env: dict[str, str], where: str) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(env)
    assert e.value.where == where
