"""SQL engine set-up and migrations: SQLite (embedded default) or PostgreSQL (``DATABASE_URL``).

Sync SQLAlchemy on purpose: the screening hot path never waits on a read from SQL (API keys are
cached per process, verdicts come from Redis), and the one write it makes, the audit row, goes through
``audit.AuditWriter``, which group-commits from a thread. Sync drivers (stdlib ``sqlite3``, psycopg 3) and
Alembic's sync API keep that simple; the few reads (key lookup on a cache miss, ``GET /v1/verdicts``)
run in the threadpool.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x736D73677561  # pg advisory lock id ("smsgua"): one migrator at a time


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """A SQLAlchemy engine for ``url``; SQLite files get WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every sqlite test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL + NORMAL is the norm
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration. Safe to call from several processes at once on
    PostgreSQL (an advisory lock serializes them); on SQLite the database's write lock does."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = alembic_config()
    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        # "heads": each feature (audit, batches, review) keeps its own migration branch off 0001, so
        # features can land in any order without rewriting each other's down_revision.
        command.upgrade(config, "heads")


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """SQLite: an exclusive lock file next to the database serializes migrating processes."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(database + ".migrate-lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def applied_revisions(engine: Engine) -> frozenset[str]:
    """Every migration the database has, following each recorded head back through its down revisions
    and dependencies (a branch that depends on another records only its own head)."""
    with engine.connect() as conn:
        try:
            heads = tuple(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        except Exception:
            return frozenset()
    if not heads:
        return frozenset()
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(r.revision for r in script.iterate_revisions(heads, "base"))


def script_heads() -> frozenset[str]:
    """The newest migration of every branch in ``storage/migrations``."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())
