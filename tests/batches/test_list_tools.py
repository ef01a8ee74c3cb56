"""Contact-list preview, export and merge (issue 19 point 3) on both backends: an export reads back in as the same
list, masks unless the reader may see numbers, neutralizes spreadsheet formulas like the audit export and is an
audit event; a merge de-duplicates by phone identity, keeps the first list's values, unions the columns and keeps
opted-out numbers (applied at release) while counting them."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from smsguard import batches
from smsguard.audit._tables import events
from smsguard.core import ConflictError, InputError, NotFoundError


def _import(ctx, tenant: int, text: str, name: str = "l") -> dict:
    return batches.import_contacts(ctx, tenant, name, io.BytesIO(text.encode("utf-8")))


def _export(ctx, tenant: int, list_id: int, *, full: bool) -> list[list[str]]:
    body = "".join(batches.export_contacts(ctx, tenant, list_id, full=full, actor="test:x"))
    return list(csv.reader(io.StringIO(body)))


def test_preview_masks_numbers_and_keeps_values(ctx, tenant: int) -> None:
    lst = _import(ctx, tenant, "手机号,name\n13812340001,张三\n13812340002,李四\n")
    p = batches.preview_contacts(ctx, tenant, lst["id"])
    assert p["columns"] == ["name"]
    assert [(c["phone"], c["values"]) for c in p["contacts"]] == [("138****0001", ["张三"]), ("138****0002", ["李四"])]


def test_export_round_trips_full_masks_otherwise_and_neutralizes_formulas(ctx, tenant: int, migrated_db) -> None:
    src = 'phone,name,note\n+86 138 1234 0001,=HYPERLINK("x"),a\n13812340002,@SUM(1),"b,c"\n13812340003,-2,+\n'
    lst = _import(ctx, tenant, src)
    rows = _export(ctx, tenant, lst["id"], full=True)
    assert rows == [
        ["phone", "name", "note"],
        ["13812340001", '\'=HYPERLINK("x")', "a"],
        ["13812340002", "'@SUM(1)", "b,c"],
        ["13812340003", "'-2", "'+"],
    ]
    # what it exports reads back in as the same numbers with the same (now inert) values
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    again = _import(ctx, tenant, buf.getvalue())
    assert (again["valid"], again["invalid"], again["columns"]) == (3, 0, ["name", "note"])
    assert _export(ctx, tenant, again["id"], full=True) == rows
    masked = _export(ctx, tenant, lst["id"], full=False)
    assert [r[0] for r in masked[1:]] == ["138****0001", "138****0002", "138****0003"]
    with migrated_db.connect() as conn:
        got = (
            conn.execute(
                select(events.c.payload)
                .where(events.c.event_type == "contacts.exported", events.c.subject == f"contact_list:{lst['id']}")
                .order_by(events.c.id)
            )
            .scalars()
            .all()
        )
    assert ['"masked":false' in p for p in got] == [True, False]


def test_export_is_tenant_scoped(ctx, tenant: int, migrated_db) -> None:
    from smsguard.storage import create_tenant

    other = create_tenant(migrated_db, f"other-{tenant}").id
    lst = _import(ctx, tenant, "13812340001\n")
    with pytest.raises(NotFoundError):
        batches.export_contacts(ctx, other, lst["id"], full=True)
    with pytest.raises(NotFoundError):
        batches.merge_lists(ctx, other, [lst["id"], _import(ctx, other, "13812340009\n")["id"]], "m")


def test_merge_dedupes_by_identity_unions_columns_and_keeps_opted_out(ctx, tenant: int) -> None:
    a = _import(ctx, tenant, "phone,name\n13812340001,A1\n13812340002,A2\n", "a")
    b = _import(ctx, tenant, "phone,city,name\n+8613812340002,北京,B2\n13812340003,上海,B3\n", "b")
    c = _import(ctx, tenant, "13812340003\n138 1234 0004\n", "c")
    batches.opt_out(ctx, phone=batches.parse_phone("13812340004"), tenant_id=tenant, actor="test:x")
    m = batches.merge_lists(ctx, tenant, [a["id"], b["id"], c["id"]], "merged", actor="test:x")
    assert (m["status"], m["total"], m["valid"], m["duplicates"], m["opted_out"]) == ("ready", 6, 4, 2, 1)
    assert m["columns"] == ["name", "city"] and m["sources"] == [a["id"], b["id"], c["id"]]
    rows = _export(ctx, tenant, m["id"], full=True)
    assert rows == [
        ["phone", "name", "city"],
        ["13812340001", "A1", ""],
        ["13812340002", "A2", ""],
        ["13812340003", "B3", "上海"],
        ["13812340004", "", ""],
    ]
    assert batches.get_list(ctx, tenant, m["id"])["encoding"] == "merged"


def test_merge_refuses_bad_input(ctx, tenant: int) -> None:
    a = _import(ctx, tenant, "13812340001\n")
    with pytest.raises(InputError) as e:
        batches.merge_lists(ctx, tenant, [a["id"], a["id"]], "m")
    assert e.value.where == "$.list_ids"
    with pytest.raises(InputError) as e:
        batches.merge_lists(ctx, tenant, [a["id"], _import(ctx, tenant, "13812340002\n")["id"]], " ")
    assert e.value.where == "$.name"
    with pytest.raises(NotFoundError) as e2:
        batches.merge_lists(ctx, tenant, [a["id"], 10**9], "m")
    assert e2.value.where == "$.list_ids[1]"
    failed = _import_failed(ctx, tenant)
    with pytest.raises(ConflictError):
        batches.merge_lists(ctx, tenant, [a["id"], failed], "m")


def _import_failed(ctx, tenant: int) -> int:
    with pytest.raises(batches.BatchError):
        _import(ctx, tenant, "not a phone,x\n")
    from smsguard.batches._tables import contact_lists

    with ctx.db.connect() as conn:
        return (
            conn.execute(
                select(contact_lists.c.id)
                .where(contact_lists.c.tenant_id == tenant, contact_lists.c.status == "failed")
                .order_by(contact_lists.c.id.desc())
            )
            .scalars()
            .first()
        )
