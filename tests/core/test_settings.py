"""Settings: every variable in one table, parsed once, errors naming the variable; the secrets a deployment
must share."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from smsguard.core import (
    VARIABLES,
    Settings,
    SettingsError,
    generate_secrets,
    load_secrets,
    load_settings,
    missing_secrets,
)


def test_every_settings_field_has_exactly_one_variable() -> None:
    fields = [f.name for f in dataclasses.fields(Settings)]
    assert sorted(v.field for v in VARIABLES) == sorted(fields)
    assert len({v.name for v in VARIABLES}) == len(VARIABLES)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("SMSGUARD_PORT", "eighty", "must be an integer"),
    ("SMSGUARD_WORKERS", "0", "at least 1"),
    ("DATABASE_URL", "mysql://x", "must start with postgresql://"),
    ("REDIS_URL", "http://x", "must start with redis://"),
    ("SMSGUARD_REVIEW_LEASE", "soon", "number of seconds"),
    ("SMSGUARD_REVIEW_LEASE", "0", "positive"),
    ("SMSGUARD_REDIS_NAMESPACE", "a b", "white space"),
    ("SMSGUARD_REDIS_TIMEOUT", "-1", "positive"),
])
def test_a_bad_value_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as e:
        load_settings({name: value})
    assert e.value.where == name and e.value.code == "settings.invalid"


def test_values_are_parsed_into_types() -> None:
    s = load_settings({"SMSGUARD_POLICY": "/etc/p.yaml", "SMSGUARD_MODEL": "none", "SMSGUARD_REVIEW_LEASE": "12.5",
                       "SMSGUARD_REVIEW_FOUR_EYES_SEVERITY": "high, medium", "SMSGUARD_LEXICONS": "/a:/b",
                       "SMSGUARD_PORT": ""})
    assert s.policy_path == Path("/etc/p.yaml") and s.model_path is None and s.review_lease == 12.5
    assert s.review_four_eyes_severities == {"high", "medium"}
    assert s.extra_lexicon_dirs == (Path("/a"), Path("/b")) and s.port == 8000  # empty = unset


def test_environ_is_the_inverse_of_loading() -> None:
    env = {"DATABASE_URL": "postgresql://u@db/x", "SMSGUARD_PORT": "8100", "SMSGUARD_MODEL": "none",
           "SMSGUARD_LEXICONS": "/a:/b", "SMSGUARD_REVIEW_FOUR_EYES_SEVERITY": "high,medium"}
    s = load_settings(env)
    assert load_settings(s.environ()) == s


def test_embedded_secrets_are_generated_once_private(tmp_path: Path) -> None:
    first = load_secrets(Settings(data_dir=tmp_path))
    assert load_secrets(Settings(data_dir=tmp_path)) == first
    for name in ("phone.key", "phone-hash.key", "session-secret", "audit-signing.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert load_secrets(Settings(data_dir=tmp_path / "other")).phone_hash_key != first.phone_hash_key


def test_with_database_url_missing_secrets_are_refused_not_generated(tmp_path: Path) -> None:
    s = Settings(database_url="postgresql://u@db/x", data_dir=tmp_path)
    assert missing_secrets(s) == ["SMSGUARD_PHONE_KEY", "SMSGUARD_PHONE_HASH_KEY", "SMSGUARD_SESSION_SECRET",
                                  "SMSGUARD_AUDIT_SIGNING_KEY_FILE"]
    with pytest.raises(SettingsError, match="every host must share"):
        load_secrets(s)
    assert list(tmp_path.iterdir()) == []


def test_a_secrets_directory_or_variables_configure_a_deployment(tmp_path: Path) -> None:
    generate_secrets(tmp_path / "secrets")
    s = Settings(database_url="postgresql://u@db/x", data_dir=tmp_path / "a", secrets_dir=tmp_path / "secrets")
    b = dataclasses.replace(s, data_dir=tmp_path / "b")
    assert missing_secrets(s) == [] and load_secrets(s) == load_secrets(b)  # two hosts, one set of secrets
    key = "2:" + "A" * 43 + "=,1:" + "B" * 43 + "="
    v = dataclasses.replace(s, phone_key=key, phone_hash_key="ab" * 32)
    loaded = load_secrets(v)
    assert [kid for kid, _ in loaded.phone_keys] == [2, 1] and loaded.phone_key_id == 2
    assert loaded.phone_hash_key == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize(("key", "message"), [
    ("not base64!", "ID:BASE64"),
    ("1:" + "A" * 20, "32 bytes"),
    ("1:" + "A" * 43 + "=,1:" + "B" * 43 + "=", "appears twice"),
    ("300:" + "A" * 43 + "=", "1..255"),
])
def test_a_bad_phone_key_names_the_variable(tmp_path: Path, key: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as e:
        load_secrets(Settings(data_dir=tmp_path, phone_key=key))
    assert e.value.where == "SMSGUARD_PHONE_KEY"
