"""The console's contact-list upload with the files that were 500s (issue 15 failure 6): a list with per-line
rejects, or the upload page again with a 400 that says what is wrong and where."""

from __future__ import annotations

import random

import pytest
from console_support import Client

BAD_CSVS = {
    "cr_only": b"phone,name\r13812340001,a\r13812340002,b\r",
    "random_bytes": bytes(random.Random(6).randbytes(100_000)),
    "field_over_131072": b"phone,name\n13812340001," + b"x" * 140_000 + b"\n13812340002,b\n",
    "unterminated_quote": b'phone,name\n13812340001,"open\n13812340002,b\n',
    "line_of_5mb": b"phone,name\n13812340001," + b"y" * 5_000_000 + b"\n",
}


@pytest.mark.parametrize("name", sorted(BAD_CSVS))
def test_bad_csv_upload(alice: Client, name: str) -> None:
    files = {"file": (f"{name}.csv", BAD_CSVS[name])}
    r = alice.http.post("/console/lists", data={"_csrf_token": alice.token, "name": name}, files=files)
    assert r.status_code in (302, 400), r.text[:500]
    if r.status_code == 400:
        assert "line 1" in r.text and f"{name}.csv" in r.text  # the message names the file and the line
    else:
        page = alice.get(r.headers["location"])
        assert page.status_code == 200
