"""AES-GCM at rest and the keyed hash, with the deployment's keys (environment or data-dir files)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from smsguard.core import Settings, SettingsError, load_secrets
from smsguard.phones import (
    PhoneVault,
    keyed_hash,
    load_hash_key,
    load_keys,
    phone_hash,
    phone_subject,
    vault_for,
)


def test_vault(tmp_path: Path) -> None:
    v = vault_for(tmp_path)
    a, b = v.encrypt("+8613812345678"), v.encrypt("+8613812345678")
    assert a != b and b"13812345678" not in a  # random nonce, ciphertext
    assert v.decrypt(a) == "+8613812345678"
    # the lookup hash is the audit log's keyed hash: trails by number find both
    assert v.hash("+8613812345678") == phone_hash("13812345678", load_hash_key(tmp_path))
    assert v.subject("+8613812345678") == phone_subject("+86 138 1234 5678", load_hash_key(tmp_path))
    for name in ("phone.key", "phone-hash.key"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert load_keys(tmp_path) == load_keys(tmp_path)  # created once
    other = PhoneVault(os.urandom(32), os.urandom(32))
    with pytest.raises(Exception):  # noqa: B017 - a wrong key must not decrypt (InvalidTag)
        other.decrypt(a)


def test_hash_is_hmac_of_national_digits() -> None:
    """The format hashes already in SQL were written with: HMAC-SHA256 of the 11 national digits."""
    import hashlib
    import hmac

    key = b"deployment key"
    expected = hmac.new(key, b"13812345678", hashlib.sha256).hexdigest()
    assert keyed_hash("13812345678", key) == expected == phone_hash("+86 138 1234 5678", key)
    assert phone_hash("１３８１２３４５６７８", key) == expected
    assert PhoneVault(b"k" * 32, key).hash("+8613812345678") == expected


def test_keys_from_the_settings(tmp_path: Path) -> None:
    enc, mac = os.urandom(32), os.urandom(16)
    settings = Settings(data_dir=tmp_path, phone_key=base64.b64encode(enc).decode(), phone_hash_key=mac.hex())
    secrets = load_secrets(settings)
    assert (secrets.phone_key, secrets.phone_hash_key) == (enc, mac)
    assert not (tmp_path / "phone.key").exists() and not (tmp_path / "phone-hash.key").exists()


@pytest.mark.parametrize(
    ("field", "var", "value", "message"),
    [
        ("phone_key", "SMSGUARD_PHONE_KEY", "not base64!", "ID:BASE64"),
        ("phone_key", "SMSGUARD_PHONE_KEY", base64.b64encode(b"short").decode(), "32 bytes"),
        ("phone_hash_key", "SMSGUARD_PHONE_HASH_KEY", "zz", "must be hex"),
    ],
)
def test_bad_keys_name_the_variable(tmp_path: Path, field: str, var: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as e:
        load_secrets(Settings(data_dir=tmp_path, **{field: value}))
    assert e.value.where == var and message in e.value.message


def test_bad_key_file(tmp_path: Path) -> None:
    (tmp_path / "phone-hash.key").write_text("not hex\n")
    with pytest.raises(SettingsError) as e:
        load_hash_key(tmp_path)
    assert e.value.where == str(tmp_path / "phone-hash.key")
