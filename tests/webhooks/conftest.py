"""Fixtures of the webhooks tests: the receiver process (tests/webhooks/receiver.py), a fresh tenant per test
on the backend under test (SQLite, then PostgreSQL), and a helper that emits events the way callers do."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from webhook_support import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()  # one per test: its log holds only that test's requests
    yield r
    r.close()


@pytest.fixture
def tenant(migrated_db, unique_name: Callable[[str], str]) -> int:
    from smsguard.storage import create_tenant

    return create_tenant(migrated_db, unique_name("wh")).id


@pytest.fixture
def emit(migrated_db) -> Callable[..., str]:
    """``emit(tenant_id, event_type, subject, payload)``: one event in its own transaction."""
    from smsguard import webhooks

    def go(tenant_id: int, event_type: str, subject: str, payload: dict) -> str:
        with migrated_db.begin() as conn:
            return webhooks.emit(conn, tenant_id=tenant_id, event_type=event_type, subject=subject, payload=payload)

    return go


@pytest.fixture(autouse=True)
def only_this_tests_endpoints(migrated_db) -> Iterator[None]:
    """The backend's database is shared by the whole session, and earlier tests leave endpoints behind whose
    receivers are gone (closed ports, unresolvable hosts) with pending deliveries. A test's dispatchers under
    the fast test retry policy would spend the test retrying those in a storm, and on a loaded CI host that
    starved the deliveries the test watches. Those endpoints are disabled for the test and enabled again after."""
    from sqlalchemy import update

    from smsguard.webhooks._tables import endpoints

    with migrated_db.begin() as conn:
        parked = conn.execute(update(endpoints).where(endpoints.c.enabled.is_(True)).values(enabled=False)
                              .returning(endpoints.c.id)).scalars().all()
    yield
    if parked:
        with migrated_db.begin() as conn:
            conn.execute(update(endpoints).where(endpoints.c.id.in_(parked)).values(enabled=True))
