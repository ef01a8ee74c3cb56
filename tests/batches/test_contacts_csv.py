"""Contact CSV import never fails with anything but BatchError (a 400/413 with code, message, where): the bad
files of issue 15 (failure 6) as per-line rejects, and a bounded fuzz of the importer, on both backends."""

from __future__ import annotations

import io
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsguard import batches
from smsguard.batches import BatchError

HEADER = "phone,name\n"


def _import(ctx, tenant: int, data: bytes) -> dict:
    return batches.import_contacts(ctx, tenant, "fuzz", io.BytesIO(data))


def _rejects(result: dict) -> dict[int, str]:
    return {r["line"]: r["code"] for r in result["rejected"]}


def test_cr_only_line_endings(ctx, tenant: int) -> None:
    """Old Mac / some exporters end lines with CR alone: _csv.Error ("new-line character seen in unquoted field")."""
    r = _import(ctx, tenant, b"phone,name\r13812340001,a\r13812340002,b\r13812340003,c")
    assert (r["total"], r["valid"], r["invalid"]) == (3, 3, 0)


def test_mixed_line_endings(ctx, tenant: int) -> None:
    r = _import(ctx, tenant, b"phone,name\r\n13812340001,a\r13812340002,b\n13812340003,c\r\n")
    assert (r["total"], r["valid"]) == (3, 3)


def test_field_over_csv_limit(ctx, tenant: int) -> None:
    """A field over 131,072 characters (csv.field_size_limit) was a 500; now that line is rejected."""
    data = (HEADER + "13812340001,a\n13812340002," + "x" * 140_000 + "\n13812340003,c\n").encode()
    r = _import(ctx, tenant, data)
    assert (r["total"], r["valid"], r["invalid"]) == (3, 2, 1)
    assert _rejects(r) == {3: "contacts.too_long"}


def test_five_megabyte_line(ctx, tenant: int) -> None:
    data = (HEADER + "13812340001," + "y" * 5_000_000 + "\n13812340002,b\n").encode()
    r = _import(ctx, tenant, data)
    assert (r["valid"], r["invalid"]) == (1, 1) and _rejects(r) == {2: "contacts.too_long"}


def test_five_megabyte_file_without_newline(ctx, tenant: int) -> None:
    data = (HEADER + "13812340001," + "z" * 5_000_000).encode()
    r = _import(ctx, tenant, data)
    assert (r["valid"], r["invalid"]) == (0, 1) and _rejects(r) == {2: "contacts.too_long"}


def test_unterminated_quote(ctx, tenant: int) -> None:
    """A quote never closed swallowed the rest of the file into one field (and past the csv limit: a 500).
    Now the line that opens it is rejected and the lines after it are read as lines."""
    rows = [f"1381234{i:04d},n{i}" for i in range(2, 5000)]
    data = (HEADER + '13812340001,"unclosed\n' + "\n".join(rows) + "\n").encode()
    r = _import(ctx, tenant, data)
    assert _rejects(r) == {2: "contacts.csv"}
    assert (r["valid"], r["invalid"]) == (len(rows), 1)


def test_unterminated_quote_at_the_end(ctx, tenant: int) -> None:
    r = _import(ctx, tenant, (HEADER + '13812340001,a\n13812340002,"b\n13812340003,c\n').encode())
    assert _rejects(r) == {3: "contacts.csv"} and r["valid"] == 2


def test_quoted_field_over_lines_still_works(ctx, tenant: int) -> None:
    r = _import(ctx, tenant, (HEADER + '13812340001,"two\nlines"\n13812340002,b\n').encode())
    assert (r["valid"], r["invalid"]) == (2, 0)
    assert r["columns"] == ["name"]


def test_random_bytes(ctx, tenant: int) -> None:
    blob = random.Random(15).randbytes(200_000)
    with pytest.raises(BatchError) as e:  # no phone column and no number in the first column: a clear 400
        _import(ctx, tenant, blob)
    assert e.value.code == "contacts.no_phone" and e.value.where.startswith("line ")
    r = _import(ctx, tenant, HEADER.encode() + blob)  # a header, then garbage: every line rejected, none a 500
    assert r["valid"] == 0 and r["invalid"] == r["total"] > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000))
def test_fuzz_importer_bytes(ctx, tenant: int, blob: bytes) -> None:
    for data in (blob, HEADER.encode() + blob):
        try:
            r = _import(ctx, tenant, data)
        except BatchError as e:
            assert e.code.startswith("contacts.") and e.message and e.where
        else:
            assert r["total"] == r["valid"] + r["invalid"] + r["duplicates"]


_CSVISH = st.lists(st.sampled_from([*'1382,"\r\n x０٣\x00\ufeff', "13812345678", "\r\n"]), max_size=200).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_CSVISH, st.sampled_from(["utf-8", "gb18030"]))
def test_fuzz_importer_csvish_text(ctx, tenant: int, text: str, encoding: str) -> None:
    try:
        r = _import(ctx, tenant, (HEADER + text).encode(encoding, errors="replace"))
    except BatchError as e:
        assert e.code.startswith("contacts.") and e.where
    else:
        assert r["total"] == r["valid"] + r["invalid"] + r["duplicates"]
        assert all(rej["line"] >= 2 and rej["code"] for rej in r["rejected"])
