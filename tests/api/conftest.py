"""API fixtures: one running app (litestar TestClient) per backend, and fresh tenants with keys."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from litestar.testing import TestClient

from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig

REPO_POLICY = PROJECT_ROOT / "policy.yaml"
# Tenant "sigco" has its own policy override in the tests' policy copy: only 甲公司 is its signature.
OVERRIDE_TENANT = "sigco"
# The API tests' own tiny lexicon (the shipped lexicons change often).
API_LEXICON = {
    "gambling.tsv": "赌场\tgambling\thigh\tsubstring\n",
    "fraud.tsv": "代开发票\tfraud\tmedium\tsubstring\n",
    "allow.tsv": "测试\tcommon word\n",
}


def write_files(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content, "utf-8")
    return directory


@dataclasses.dataclass(frozen=True)
class TenantKey:
    name: str
    tenant_id: int
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def write_policy(root: Path) -> Path:
    """The repository's policy.yaml plus a signature override for tenant ``sigco``."""
    policy = yaml.safe_load(REPO_POLICY.read_text("utf-8"))
    policy.setdefault("tenants", {})[OVERRIDE_TENANT] = {"signatures": ["甲公司"]}
    target = root / "policy.yaml"
    target.write_text(yaml.safe_dump(policy, allow_unicode=True), "utf-8")
    return target


@pytest.fixture(scope="session")
def api_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("api-engine")
    return Engine(EngineConfig(policy_path=write_policy(root), lexicon_dirs=(write_files(root / "lex", API_LEXICON),)))


@pytest.fixture(scope="session")
def client(backend, api_engine: Engine) -> Iterator[TestClient]:
    """A started app on ``backend`` (migrations run at start)."""
    from smsguard.api import create_app

    app = create_app(api_engine, settings=backend.settings())
    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_tenant(backend, client: TestClient, unique_name: Callable[[str], str]) -> Callable[..., TenantKey]:
    """``make_tenant(rate_limit=None, admin=False, name=None)``: a new tenant and an API key for it."""
    from smsguard.storage import create_key, create_tenant

    def make(*, rate_limit: int | None = None, admin: bool = False, name: str | None = None) -> TenantKey:
        tenant = create_tenant(backend.db, name or unique_name("t"), rate_limit=rate_limit)
        key, _ = create_key(backend.db, tenant.name, admin=admin)
        return TenantKey(tenant.name, tenant.id, key)

    return make


@pytest.fixture
def reloadable_engine(tmp_path: Path) -> Engine:
    """An engine on private files a test may edit and reload."""
    shutil.copyfile(REPO_POLICY, tmp_path / "policy.yaml")
    lexicons = write_files(tmp_path / "lex", API_LEXICON)
    return Engine(EngineConfig(policy_path=tmp_path / "policy.yaml", lexicon_dirs=(lexicons,)))
