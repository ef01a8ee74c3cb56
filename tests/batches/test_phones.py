"""Phone numbers: E.164, carrier by prefix (incl. virtual operators), masking, AES-GCM and the keyed hash."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import audit
from batches import InvalidPhone, mask, parse_phone, vault_for
from batches._phones import PhoneVault, load_key


@pytest.mark.parametrize(
    ("raw", "e164", "carrier", "virtual"),
    [
        ("13812345678", "+8613812345678", "mobile", False),
        ("+86 138-1234-5678", "+8613812345678", "mobile", False),
        ("0086 13012345678", "+8613012345678", "unicom", False),
        ("8618912345678", "+8618912345678", "telecom", False),
        ("19212345678", "+8619212345678", "broadnet", False),
        ("17001234567", "+8617001234567", "telecom", True),
        ("17041234567", "+8617041234567", "unicom", True),
        ("16512345678", "+8616512345678", "mobile", True),
    ],
)
def test_parse(raw: str, e164: str, carrier: str, virtual: bool) -> None:
    p = parse_phone(raw)
    assert (p.e164, p.carrier, p.virtual) == (e164, carrier, virtual)
    assert p.price_key == ("virtual" if virtual else carrier)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "phone.empty"),
        ("12345", "phone.invalid"),
        ("14012345678", "phone.invalid"),
        ("02161234567", "phone.not_mobile"),
        ("+14155552671", "phone.foreign"),
        ("hello", "phone.invalid"),
    ],
)
def test_invalid(raw: str, code: str) -> None:
    with pytest.raises(InvalidPhone) as e:
        parse_phone(raw)
    assert e.value.code == code


def test_mask() -> None:
    assert mask("+8613812341234") == "138****1234"
    assert mask("13812341234") == "138****1234"


def test_vault(tmp_path: Path) -> None:
    v = vault_for(tmp_path)
    a, b = v.encrypt("+8613812345678"), v.encrypt("+8613812345678")
    assert a != b and b"13812345678" not in a  # random nonce, ciphertext
    assert v.decrypt(a) == "+8613812345678"
    # the lookup hash is the audit log's keyed hash: trails by number find both
    assert v.hash("+8613812345678") == audit.phone_hash("13812345678", audit.load_phone_key(tmp_path))
    assert stat.S_IMODE(os.stat(tmp_path / "phone.key").st_mode) == 0o600
    assert load_key(tmp_path) == load_key(tmp_path)  # created once
    other = PhoneVault(os.urandom(32), os.urandom(32))
    with pytest.raises(Exception):  # noqa: B017 - a wrong key must not decrypt (InvalidTag)
        other.decrypt(a)
