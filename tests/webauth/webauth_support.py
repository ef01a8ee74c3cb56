"""Fixtures of the webauth tests (a module named conftest is ambiguous when the whole suite runs): a migrated
database (audit events need their tables) with an accounts table of the tests' own, so the shared code is
exercised on a table neither UI uses, with an extra column as the console's ``tenant_id``.

The database tests run on both backends: ``db`` is a new database per module on the session ``backend`` fixture
of tests/conftest.py (``scratch_database_url``: a SQLite file, or a PostgreSQL schema dropped with the session), so
fixed names (member-web) and clearing the whole session table stay within the module."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData

from engine import SmsguardError
from review._tables import review_sessions, review_users
from webauth import Accounts, AccountsConfig

PASSWORD = "correct horse battery"

# Copies of the reviewer tables under names of their own (the columns webauth needs), plus a column of the
# test's own: what create_user(**columns) fills, as the console's tenant_id.
metadata = MetaData()
team_users = review_users.to_metadata(metadata, name="webauth_test_users")
team_users.append_column(Column("team", Integer, nullable=False))
sessions = review_sessions.to_metadata(metadata, name="webauth_test_sessions")

TeamUser = namedtuple("TeamUser", "id username role team")  # what Account asks of a user object, and the team


class TeamUserError(SmsguardError):
    code = "team.user"


ACCOUNTS = Accounts(AccountsConfig(table=team_users, roles=("member", "lead"), error=TeamUserError,
                                   user=lambda row: TeamUser(row.id, row.username, row.role, row.team),
                                   exists_code="team.exists", not_found_code="team.not_found"))


@pytest.fixture(scope="module")
def db(backend) -> Iterator[Engine]:
    from storage import make_engine, migrate

    engine = make_engine(backend.settings(database_url=backend.scratch_database_url()).sqlalchemy_url)
    migrate(engine)
    metadata.create_all(engine)
    yield engine
    engine.dispose()
