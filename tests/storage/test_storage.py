"""The system of record on both backends: migrations, tenants, hashed API keys, verdict rows, group commit."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from smsguard.audit import AuditWriter, insert_verdicts
from smsguard.core import ConflictError, NotFoundError
from smsguard.storage import (
    applied_revisions,
    count_verdicts,
    create_key,
    create_tenant,
    ensure_local_tenant,
    find_key,
    get_tenant,
    get_verdict,
    list_keys,
    migrate,
    revoke_key,
    script_heads,
    set_rate_limit,
)


def _row(verdict_id: str, tenant_id: int, text_: str = "短信内容") -> tuple:
    return (verdict_id, tenant_id, datetime.now(UTC), "m1", "h" * 64, "pass", 0.0, "p", "l", "none", False, text_,
            '{"decision":"pass"}')


def test_migrations_create_the_schema_and_are_idempotent(migrated_db) -> None:
    migrate(migrated_db)  # a second run (a second process starting) changes nothing
    assert script_heads() <= applied_revisions(migrated_db)
    tables = set(inspect(migrated_db).get_table_names())
    assert {"tenants", "api_keys", "verdicts", "alembic_version"} <= tables


def test_concurrent_migrations_do_not_collide(backend) -> None:
    # Several processes may start at once against one database: the migration lock serializes them.
    from smsguard.storage import make_engine

    url = backend.settings(database_url=backend.scratch_database_url()).sqlalchemy_url
    engines = [make_engine(url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(db) -> None:
        try:
            migrate(db)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(db,)) for db in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert script_heads() <= applied_revisions(engines[0])
    for db in engines:
        db.dispose()


def test_tenant_names_are_unique_and_validated(migrated_db, unique_name) -> None:
    name = unique_name("acme")
    t = create_tenant(migrated_db, name, rate_limit=7)
    assert get_tenant(migrated_db, name) == t
    with pytest.raises(ConflictError):
        create_tenant(migrated_db, name)
    with pytest.raises(Exception, match="tenant name"):
        create_tenant(migrated_db, "Bad Name!")
    with pytest.raises(NotFoundError):
        get_tenant(migrated_db, unique_name("nobody"))
    assert set_rate_limit(migrated_db, name, None).rate_limit is None


def test_api_keys_are_stored_hashed_and_found_by_prefix(migrated_db, unique_name) -> None:
    name = unique_name("keys")
    tenant = create_tenant(migrated_db, name)
    key, listing = create_key(migrated_db, name, label="ci", admin=True)
    assert key.startswith("sg_") and len(key) == 46
    assert listing.prefix == key[:12]
    with migrated_db.connect() as conn:
        stored = conn.execute(
            text("SELECT prefix, key_hash FROM api_keys WHERE tenant_id = :t"), {"t": tenant.id}
        ).one()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in stored  # the key itself is nowhere in the row
    info = find_key(migrated_db, key)
    assert info is not None and info.tenant == name and info.tenant_id == tenant.id and info.admin
    # same prefix, wrong rest; malformed; unknown
    assert find_key(migrated_db, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert find_key(migrated_db, "not-a-key") is None
    assert find_key(migrated_db, "sg_" + "x" * 43) is None


def test_revoked_keys_stop_working(migrated_db, unique_name) -> None:
    name = unique_name("rev")
    create_tenant(migrated_db, name)
    key, _ = create_key(migrated_db, name)
    keep, _ = create_key(migrated_db, name)
    assert revoke_key(migrated_db, key[:12]) == 1
    assert find_key(migrated_db, key) is None
    assert find_key(migrated_db, keep) is not None
    assert [k.revoked_at is not None for k in list_keys(migrated_db, name)] == [True, False]
    with pytest.raises(Exception, match="first 12"):
        revoke_key(migrated_db, "sg_")


def test_verdicts_are_only_visible_to_their_tenant(migrated_db, unique_name) -> None:
    a = create_tenant(migrated_db, unique_name("a"))
    b = create_tenant(migrated_db, unique_name("b"))
    va, vb = uuid.uuid4().hex, uuid.uuid4().hex
    insert_verdicts(migrated_db, [_row(va, a.id, "甲的短信"), _row(vb, b.id)])
    row = get_verdict(migrated_db, a.id, va)
    assert row is not None and row.text == "甲的短信" and row.decision == "pass"
    assert row.created_at is not None
    assert get_verdict(migrated_db, b.id, va) is None
    assert count_verdicts(migrated_db, a.id) == 1


def test_audit_writer_group_commits_and_acknowledges_only_after_commit(migrated_db, unique_name) -> None:
    tenant = create_tenant(migrated_db, unique_name("w"))
    writer = AuditWriter(migrated_db)
    writer.start()
    ids = [uuid.uuid4().hex for _ in range(400)]

    async def main() -> None:
        async def one(i: str) -> None:
            await writer.write([_row(i, tenant.id)])
            # acknowledged means committed: a fresh connection sees it
            assert get_verdict(migrated_db, tenant.id, i) is not None

        await asyncio.gather(*(one(i) for i in ids))

    try:
        asyncio.run(main())
    finally:
        writer.close()
    assert count_verdicts(migrated_db, tenant.id) == len(ids)
    assert writer.rows == len(ids)
    assert writer.batches < len(ids)  # concurrent writes shared commits


def test_audit_writer_reports_a_failed_commit(migrated_db, unique_name) -> None:
    tenant = create_tenant(migrated_db, unique_name("dup"))
    writer = AuditWriter(migrated_db)
    writer.start()

    async def main() -> None:
        taken = uuid.uuid4().hex
        await writer.write([_row(taken, tenant.id)])
        with pytest.raises(Exception):  # noqa: B017 - driver-specific IntegrityError
            await writer.write([_row(taken, tenant.id)])  # duplicate primary key

    try:
        asyncio.run(main())
    finally:
        writer.close()
    assert count_verdicts(migrated_db, tenant.id) == 1


def test_local_tenant_is_created_only_on_an_empty_database(tmp_path) -> None:
    from smsguard.storage import make_engine

    db = make_engine(f"sqlite:///{tmp_path / 'first.db'}")
    migrate(db)
    key = ensure_local_tenant(db)
    assert key is not None
    info = find_key(db, key)
    assert info is not None and info.tenant == "local" and info.admin
    assert ensure_local_tenant(db) is None  # second start: nothing new, nothing printed
    db.dispose()


def test_one_bad_row_does_not_fail_the_requests_committed_with_it(migrated_db, unique_name) -> None:
    tenant = create_tenant(migrated_db, unique_name("iso"))
    writer = AuditWriter(migrated_db)
    writer.start()
    taken = uuid.uuid4().hex
    insert_verdicts(migrated_db, [_row(taken, tenant.id)])

    async def main() -> list[object]:
        good = [writer.write([_row(uuid.uuid4().hex, tenant.id)]) for _ in range(50)]
        bad = writer.write([_row(taken, tenant.id)])  # duplicate id: this request alone fails
        return await asyncio.gather(*good, bad, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert results[:50] == [None] * 50
    assert isinstance(results[50], Exception)
    assert count_verdicts(migrated_db, tenant.id) == 51
