"""Contact lists in the console over plain HTTP (issue 19 point 3), both backends: the list page previews the first
contacts masked; the export is the whole list (full numbers for the customer, masked for a viewer, formulas
neutralized, another tenant's list 404); a merge is one contact per number, needs CSRF and the customer role;
deleting asks first."""

from __future__ import annotations

import csv
import io
import re

import pytest
from console_support import Client


def _upload(c: Client, text: str, name: str) -> int:
    files = {"file": (f"{name}.csv", text.encode("utf-8"))}
    r = c.http.post("/console/lists", data={"_csrf_token": c.token, "name": name}, files=files)
    assert r.status_code == 302, r.text[:500]
    return int(r.headers["location"].rsplit("/", 1)[1])


@pytest.fixture(scope="module")
def two_lists(alice: Client) -> tuple[int, int]:
    a = _upload(alice, '手机号,姓名\n13712340001,=HYPERLINK("http://x")\n13712340002,李四\n', "la")
    b = _upload(alice, "phone,city\n+86 137 1234 0002,北京\n13712340003,上海\n", "lb")
    return a, b


def _rows(r) -> list[list[str]]:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


def test_list_page_previews_contacts_masked(alice: Client, two_lists) -> None:
    a, _ = two_lists
    page = alice.get(f"/console/lists/{a}").text
    preview = page.split('id="preview"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<span class="phone">([^<]+)</span>', preview) == ["137****0001", "137****0002"]
    assert "13712340001" not in page and "李四" in preview and "<th>姓名</th>" in preview
    assert f'href="/console/lists/{a}/export.csv"' in page


def test_export_full_for_the_customer_masked_for_a_viewer(
    alice: Client, victor: Client, bob: Client, two_lists
) -> None:
    a, _ = two_lists
    assert _rows(alice.get(f"/console/lists/{a}/export.csv")) == [
        ["phone", "姓名"],
        ["13712340001", '\'=HYPERLINK("http://x")'],
        ["13712340002", "李四"],
    ]
    assert [r[0] for r in _rows(victor.get(f"/console/lists/{a}/export.csv"))] == [
        "phone",
        "137****0001",
        "137****0002",
    ]
    assert bob.get(f"/console/lists/{a}/export.csv").status_code == 404


def test_merge_dedupes_and_is_guarded(alice: Client, victor: Client, bob: Client, two_lists) -> None:
    a, b = two_lists
    form = {"name": "merged ab", "list_ids": [str(a), str(b)]}
    assert alice.http.post("/console/lists/merge", data=form).status_code == 403  # no CSRF token
    assert victor.post_form("/console/lists/merge", form).status_code == 403
    assert bob.post_form("/console/lists/merge", form).status_code == 404
    r = alice.post_form("/console/lists/merge", {"name": "one", "list_ids": [str(a)]})
    assert r.status_code == 400 and 'id="merge-error"' in r.text and "two or more" in r.text
    r = alice.post_form("/console/lists/merge", form)
    assert r.status_code == 303, r.text[:300]
    merged = int(r.headers["location"].rsplit("/", 1)[1])
    page = alice.get(r.headers["location"]).text
    # the flash in the default language: "merged 2 lists: 3 contacts, 1 duplicates dropped"
    assert "已合并 2 个列表：3 个联系人，去除 1 个重复" in page and 'id="merged-note"' in page
    assert _rows(alice.get(f"/console/lists/{merged}/export.csv")) == [
        ["phone", "姓名", "city"],
        ["13712340001", '\'=HYPERLINK("http://x")', ""],
        ["13712340002", "李四", ""],
        ["13712340003", "", "上海"],
    ]
    assert f'href="/console/lists/{merged}"' in alice.get("/console/lists").text


def test_delete_asks_first_then_deletes(alice: Client) -> None:
    lid = _upload(alice, "13712349999\n", "gone")
    r = alice.post_form(f"/console/lists/{lid}/delete", {})
    assert r.status_code == 200 and 'name="confirm" value="yes"' in r.text
    assert alice.get(f"/console/lists/{lid}").status_code == 200
    r = alice.post_form(f"/console/lists/{lid}/delete", {"confirm": "yes"})
    assert r.status_code == 302
    assert alice.get(f"/console/lists/{lid}").status_code == 404


def test_merge_form_in_both_languages(alice: Client, two_lists) -> None:
    # Chinese by default, English from the switch's language (here Accept-Language): the merge form, added in
    # English, is in the catalogue like the rest of the page
    zh = alice.get("/console/lists").text.split('id="merge-form"', 1)[1].split("</form>", 1)[0]
    assert "新列表名称" in zh and "要合并的列表（两个或以上）" in zh and "合并为新列表" in zh
    assert "Merge into a new list" not in zh and "Lists to merge" not in zh
    en = alice.get("/console/lists", headers={"Accept-Language": "en"}).text
    assert "<h2>Merge lists</h2>" in en and ">Merge into a new list</button>" in en
