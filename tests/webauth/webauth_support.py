"""Fixtures of the webauth tests (a module named conftest is ambiguous when the whole suite runs): a migrated
SQLite database (audit events need their tables) with an accounts table of the tests' own, so the shared code
is exercised on a table neither UI uses, with an extra column as the console's ``tenant_id``."""

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
def db(tmp_path_factory) -> Iterator[Engine]:
    from storage import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('webauth') / 'smsguard.db'}")
    migrate(engine)
    metadata.create_all(engine)
    yield engine
    engine.dispose()
