"""A scratch deployment for the benchmarks that drive the packages in-process: a ``Runtime`` on its own data
directory, Redis namespace and (on PostgreSQL) schema, all removed afterwards. Imported by the scripts beside it."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

from smsguard.core import generate_secrets, load_settings
from smsguard.engine import Engine, default_config
from smsguard.runtime import Runtime


@dataclasses.dataclass(frozen=True)
class Scratch:
    runtime: Runtime
    tag: str  # in the namespace and the schema: unique per run
    tmp: Path  # the data directory, for files the bench writes


@contextmanager
def scratch_runtime(backend: str, prefix: str, *, pg: str, redis_url: str, keep: bool = False) -> Iterator[Scratch]:
    """An opened Runtime (SQLite + embedded Redis, or PostgreSQL schema ``<prefix>_<tag>`` + ``redis_url``, with
    secrets configured as a deployment's are); its Redis keys and schema are dropped at the end unless ``keep``."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    tag = uuid.uuid4().hex[:8]
    env: dict[str, str] = {"SMSGUARD_DATA_DIR": str(tmp), "SMSGUARD_REDIS_NAMESPACE": f"{prefix}:{tag}"}
    schema = f"{prefix}_{tag}"
    if backend == "postgresql":
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        env["DATABASE_URL"] = f"{pg}?options=-csearch_path%3D{schema}"
        env["REDIS_URL"] = redis_url
        generate_secrets(tmp / "secrets")  # a deployment: its secrets are configured, never generated per host
        env["SMSGUARD_SECRETS_DIR"] = str(tmp / "secrets")
    runtime = Runtime(load_settings(env), screening=Engine(default_config())).open()
    try:
        yield Scratch(runtime, tag, tmp)
    finally:
        if not keep:
            r = redis.Redis.from_url(runtime.redis_url)
            keys = list(r.scan_iter(match=f"{prefix}:{tag}:*", count=10_000))
            for i in range(0, len(keys), 1000):
                r.delete(*keys[i : i + 1000])
        runtime.close()
        if backend == "postgresql" and not keep:
            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
