"""Contact-list preview, export, merge and delete over the API (issue 19 point 3), both backends: the owner's key
exports full numbers, an auditor key masked ones; another tenant's list is 404; a merge is one contact per
number; a list a batch was sent to is not deleted."""

from __future__ import annotations

import csv
import io

from litestar.testing import TestClient


def _upload(client: TestClient, headers: dict[str, str], text: str, name: str) -> dict:
    r = client.post(
        f"/v1/contact-lists?name={name}", headers={**headers, "content-type": "text/csv"}, content=text.encode()
    )
    assert r.status_code == 201, r.text
    return r.json()


def _csv(r) -> list[list[str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(r.text)))


def test_export_preview_merge_and_delete(backend, client: TestClient, make_tenant) -> None:
    from smsguard.storage import create_key

    owner, other = make_tenant(), make_tenant()
    a = _upload(client, owner.headers, "phone,name\n13812340001,=cmd|x\n13812340002,b\n", "a")
    b = _upload(client, owner.headers, "mobile\n+86 138 1234 0002\n13812340003\n", "b")

    preview = client.get(f"/v1/contact-lists/{a['id']}/contacts", headers=owner.headers, params={"limit": 1})
    assert preview.status_code == 200 and preview.json()["contacts"] == [
        {"seq": 1, "line": 2, "phone": "138****0001", "carrier": "mobile", "values": ["=cmd|x"]}
    ]

    assert _csv(client.get(f"/v1/contact-lists/{a['id']}/export.csv", headers=owner.headers)) == [
        ["phone", "name"],
        ["13812340001", "'=cmd|x"],
        ["13812340002", "b"],
    ]
    auditor, _ = create_key(backend.db, owner.name, role="auditor")
    masked = _csv(client.get(f"/v1/contact-lists/{a['id']}/export.csv", headers={"Authorization": f"Bearer {auditor}"}))
    assert [r[0] for r in masked] == ["phone", "138****0001", "138****0002"]

    for path in (f"/v1/contact-lists/{a['id']}/export.csv", f"/v1/contact-lists/{a['id']}/contacts"):
        r = client.get(path, headers=other.headers)
        assert r.status_code == 404 and r.json()["code"] == "contacts.not_found", r.text
    r = client.post(
        "/v1/contact-lists/merge", headers=other.headers, json={"name": "x", "list_ids": [a["id"], b["id"]]}
    )
    assert r.status_code == 404 and r.json()["where"] == "$.list_ids[0]", r.text
    assert client.delete(f"/v1/contact-lists/{a['id']}", headers=other.headers).status_code == 404

    r = client.post("/v1/contact-lists/merge", headers=owner.headers, json={"name": "all", "list_ids": [a["id"]]})
    assert r.status_code == 400, r.text
    r = client.post(
        "/v1/contact-lists/merge", headers=owner.headers, json={"name": "all", "list_ids": [a["id"], b["id"]]}
    )
    assert r.status_code == 201, r.text
    m = r.json()
    assert (m["total"], m["valid"], m["duplicates"], m["sources"], m["encoding"]) == (
        4,
        3,
        1,
        [a["id"], b["id"]],
        "merged",
    )
    assert [r[0] for r in _csv(client.get(f"/v1/contact-lists/{m['id']}/export.csv", headers=owner.headers))] == [
        "phone",
        "13812340001",
        "13812340002",
        "13812340003",
    ]

    r = client.delete(f"/v1/contact-lists/{b['id']}", headers=owner.headers)
    assert r.status_code == 200 and r.json() == {"id": b["id"], "deleted": True}, r.text
    assert client.get(f"/v1/contact-lists/{b['id']}", headers=owner.headers).status_code == 404
    assert client.delete(f"/v1/contact-lists/{b['id']}", headers=owner.headers).status_code == 404
    # the merged list stays whole: it holds copies, not references
    assert client.get(f"/v1/contact-lists/{m['id']}", headers=owner.headers).json()["valid"] == 3
