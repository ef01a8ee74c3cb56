"""Number portability (携号转网): imported into SQL, looked up before the blocks, cached; both backends."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from sqlalchemy import delete, func, select

from smsguard.phones import PhoneVault, Portability, PortabilityReject, number_portability, parse_phone

VAULT = PhoneVault(b"p" * 32, b"portability test key")


@pytest.fixture
def portability(migrated_db):
    p = Portability(migrated_db, VAULT)
    yield p
    with migrated_db.begin() as conn:
        conn.execute(delete(number_portability))


def _csv(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode())


def test_ported_number_takes_its_new_network(portability: Portability) -> None:
    r = portability.import_file(_csv("号码,运营商", "15012345678,联通", "+86 138-0000-0001,telecom",
                                     "17001234567,mobile", "not a number,mobile", "13900000002,tele"))
    assert (r.lines, r.imported, r.rejected) == (5, 3, 2)
    assert r.first_rejects == [
        PortabilityReject(5, "phone.invalid", "character 1: 'n' (U+006E) is not a digit"),
        PortabilityReject(6, "portability.carrier", "unknown carrier 'tele' (mobile, unicom, telecom, broadnet)"),
    ]
    moved = portability.resolve(parse_phone("15012345678"))
    assert (moved.carrier, moved.ported, moved.price_key) == ("unicom", True, "unicom")
    assert portability.resolve(parse_phone("13800000001")).carrier == "telecom"
    virtual = portability.resolve(parse_phone("17001234567"))  # a virtual number listed: priced by its network
    assert (virtual.carrier, virtual.virtual, virtual.price_key) == ("mobile", False, "mobile")
    home = portability.resolve(parse_phone("15012345679"))  # never ported: its block
    assert (home.carrier, home.ported) == ("mobile", False)


def test_sql_holds_hashes_not_numbers_and_upserts(portability: Portability, migrated_db) -> None:
    portability.import_file(_csv("15012345678,unicom", "15012345678,telecom"))  # listed twice: the last wins
    portability.import_file(_csv("15012345670,broadnet"))
    with migrated_db.connect() as conn:
        rows = dict(conn.execute(select(number_portability.c.phone_hash, number_portability.c.carrier)).all())
    assert rows == {VAULT.hash("+8615012345678"): "telecom", VAULT.hash("+8615012345670"): "broadnet"}
    assert not any("1501234567" in h for h in rows)
    portability.import_file(_csv("15012345678,mobile"))  # ported back home
    assert portability.resolve(parse_phone("15012345678")).ported is False


def test_batched_import_and_lookup(portability: Portability, migrated_db) -> None:
    numbers = [f"1501234{i:04d}" for i in range(2_500)]
    r = portability.import_file(_csv(*(f"{n},unicom" for n in numbers)), batch=1000)
    assert r.imported == 2_500 and r.rejected == 0
    with migrated_db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(number_portability)).scalar_one() == 2_500
    hashes = [VAULT.hash("+86" + n) for n in [*numbers, "15999999999"]]
    found = portability.carriers_of_hashes(hashes)
    assert len(found) == 2_500 and set(found.values()) == {"unicom"}


def test_cache_serves_repeats_and_sees_other_processes_after_ttl(portability: Portability, migrated_db) -> None:
    phone = parse_phone("15012340000")
    assert portability.resolve(phone).carrier == "mobile"  # a miss, cached
    other = Portability(migrated_db, VAULT)  # another process's import
    other.import_file(_csv("15012340000,unicom"))
    assert portability.resolve(phone).carrier == "mobile"  # still the cached answer (within ttl)
    portability.ttl = 0.0
    portability.clear_cache()
    assert portability.resolve(phone).carrier == "unicom"


def test_cli_import_and_lookup(backend, migrated_db, tmp_path) -> None:
    path = tmp_path / "ported.csv"
    path.write_text("number,carrier\n15812345678,电信\n15812345679,nowhere\n", encoding="utf-8")
    env = backend.env()
    cli = [sys.executable, "-m", "smsguard", "numbers"]
    r = subprocess.run([*cli, "import-portability", str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr  # one line rejected
    assert "1 numbers imported from 2 lines" in r.stdout and "line 3: unknown carrier 'nowhere'" in r.stderr
    r = subprocess.run([*cli, "lookup", "158 1234 5678"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "now: telecom (电信)\tported\tprice key: telecom" in r.stdout, r.stderr
    assert "15812345678" not in r.stdout  # masked
    r = subprocess.run([*cli, "lookup", "158x"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "NUMBER:" in r.stderr
    with migrated_db.begin() as conn:
        conn.execute(delete(number_portability))
