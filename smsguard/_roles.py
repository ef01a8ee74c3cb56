"""Process roles of ``smsguard serve``: ``api`` (uvicorn, run by serve itself), ``release`` (opt-outs, caps,
quiet hours, budget → outbox), ``gateway`` (one worker over the configured channels) and ``relay``
(receipts and MO → SQL; batches ``sending`` → ``done``), ``webhooks`` (the webhook dispatcher: outbox → the
tenants' endpoints) and ``cmpp`` (customers' CMPP clients: SUBMIT → batch, final states → status reports).

Every role is stateless beyond SQL + Redis, so any number of each may run on any number of hosts. Each
background role runs in its own thread under a :class:`Supervisor`: a role that raises is restarted after
a short pause, at most ``max_restarts`` times in ``window`` seconds; after that the process stops with
the role's error (exit 2) instead of running on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from smsguard.core import SmsguardError

log = logging.getLogger("smsguard.roles")

ROLES = ("api", "release", "gateway", "relay", "webhooks", "cmpp", "smpp")
OPTIONAL = ("cmpp", "smpp")  # in ``all`` only when configured (SMSGUARD_CMPP_LISTEN, SMSGUARD_SMPP_LISTEN)


class RoleError(SmsguardError):
    code = "serve.role"


def parse_roles(text: str, *, where: str = "--roles", cmpp: bool = False, smpp: bool = False) -> tuple[str, ...]:
    """``api,gateway`` → ("api", "gateway"); ``all`` → every role (``cmpp`` / ``smpp`` only when a CMPP / SMPP
    listen address is configured). Unknown names are an error, and so is ``cmpp`` or ``smpp`` unconfigured."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    configured = {"cmpp": cmpp, "smpp": smpp}
    if names == ["all"]:
        return tuple(r for r in ROLES if r not in OPTIONAL or configured[r])
    for role in OPTIONAL:
        if role in names and not configured[role]:
            raise RoleError(f"the {role} role needs SMSGUARD_{role.upper()}_LISTEN (host:port)", where=where)
    unknown = [n for n in names if n not in ROLES]
    if unknown or not names:
        raise RoleError(
            f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)} (or all)"
            if unknown
            else "name at least one role",
            where=where,
        )
    return tuple(r for r in ROLES if r in names)


RoleBody = Callable[[threading.Event], None]
"""A role's body: runs until the event is set; raising means it crashed."""


class Supervisor:
    """Runs background roles in threads, restarts a crashed one (bounded), reports a fatal failure."""

    def __init__(
        self,
        roles: dict[str, RoleBody],
        *,
        on_fatal: Callable[[str], None],
        max_restarts: int = 5,
        window: float = 60.0,
        pause: float = 1.0,
    ) -> None:
        self.roles = roles
        self.on_fatal = on_fatal
        self.max_restarts, self.window, self.pause = max_restarts, window, pause
        self.stop_event = threading.Event()
        self.failure: str | None = None
        self.restarts: dict[str, int] = dict.fromkeys(roles, 0)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, body in self.roles.items():
            t = threading.Thread(target=self._keep, args=(name, body), name=f"role-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def _keep(self, name: str, body: RoleBody) -> None:
        crashes: list[float] = []
        while not self.stop_event.is_set():
            try:
                body(self.stop_event)
                if self.stop_event.is_set():
                    return
                raise RoleError("returned while the process was still running", where=f"role {name}")
            except Exception as e:  # restart it, or give up and stop the process
                now = time.monotonic()
                crashes = [t for t in crashes if now - t < self.window] + [now]
                if len(crashes) > self.max_restarts:
                    self.failure = f"role {name} failed {len(crashes)} times in {self.window:.0f} s, last: {e}"
                    log.error("%s; stopping", self.failure)
                    self.on_fatal(self.failure)
                    return
                self.restarts[name] += 1
                log.exception("role %s crashed; restarting it (%d of %d)", name, len(crashes), self.max_restarts)
                self.stop_event.wait(self.pause)

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def wait(self) -> None:
        """Block until stopped (SIGTERM/SIGINT handled by the caller) or a role failed for good."""
        while not self.stop_event.wait(0.2):
            if self.failure:
                return


def run_async(stop: threading.Event, main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(async_stop)`` in a new event loop; ``async_stop`` is set when ``stop`` is."""

    async def bridge() -> None:
        done = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.1)
            done.set()

        watcher = asyncio.create_task(watch())
        try:
            await main(done)
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher

    asyncio.run(bridge())


def release_role(ctx: Any, worker_id: str) -> RoleBody:
    def body(stop: threading.Event) -> None:
        from smsguard.batches import ReleaseWorker

        worker = ReleaseWorker(ctx, worker_id=worker_id)
        worker.prepare()  # Redis opt-out sets and caps rebuilt from SQL
        worker.run(stop)

    return body


def gateway_role(redis_url: str, ctx: Any, specs: Any, *, process: str, file_name: str) -> RoleBody:
    """The gateway worker over ``specs``; it journals every submit to SQL before acknowledging it."""

    def body(stop: threading.Event) -> None:
        from smsguard.batches import SqlSentJournal
        from smsguard.sending import VaultPhones
        from smsguard.sending._gateway_role import GatewayRole

        role = GatewayRole(redis_url, ctx.send_namespace, specs, process=process, file_name=file_name,
                           seal=VaultPhones(ctx.vault), journal=SqlSentJournal(ctx))
        run_async(stop, role.run)

    return body


def relay_role(
    ctx: Any, redis_url: str, consumer: str, *, settle_every: float = 1.0, claim_idle_ms: int = 30_000
) -> RoleBody:
    """Events → SQL, plus: batches whose recipients are all final become ``done``; events a dead relay had
    read but not acknowledged are taken over after ``claim_idle_ms``."""

    def body(stop: threading.Event) -> None:
        from smsguard.batches import SqlEventSink
        from smsguard.batches._settle import settle_batches
        from smsguard.sending import EventRelay, MessageStore, VaultPhones, redis_client

        async def main(done: asyncio.Event) -> None:
            r = redis_client(redis_url)
            store = MessageStore(r, namespace=ctx.send_namespace, seal=VaultPhones(ctx.vault))
            relay = EventRelay(store, SqlEventSink(ctx), consumer=consumer)
            await store.ensure_groups()
            task = asyncio.create_task(relay.run(done))
            try:
                while not done.is_set():
                    with contextlib.suppress(Exception):  # NOGROUP right after a Redis restart: next round
                        await r.xautoclaim(store.events, "sink", consumer, claim_idle_ms, "0-0", count=500)
                    await asyncio.to_thread(settle_batches, ctx)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), settle_every)
            finally:
                done.set()
                await task
                await r.aclose()

        run_async(stop, main)

    return body


def webhooks_role(db: Any, worker_id: str, retry: Any, *, allow_private: bool = False) -> RoleBody:
    """The webhook dispatcher; any number of them share the deliveries through SQL leases."""

    def body(stop: threading.Event) -> None:
        from smsguard.webhooks import Dispatcher

        run_async(stop, Dispatcher(db, worker_id=worker_id, retry=retry, allow_private=allow_private).run)

    return body


def cmpp_role(ctx: Any, listen: str, *, poll: float = 0.5, reload_every: float = 10.0,
              keepalive: tuple[float, float] = (30.0, 10.0)) -> RoleBody:
    """The CMPP 2.0/3.0 server for customers (see :func:`access_role`)."""
    return access_role(ctx, listen, "cmpp", poll=poll, reload_every=reload_every, keepalive=keepalive)


def smpp_role(ctx: Any, listen: str, *, poll: float = 0.5, reload_every: float = 10.0,
              keepalive: tuple[float, float] = (30.0, 10.0)) -> RoleBody:
    """The SMPP 3.4 server (SMSC side) for customers (see :func:`access_role`)."""
    return access_role(ctx, listen, "smpp", poll=poll, reload_every=reload_every, keepalive=keepalive)


def access_role(ctx: Any, listen: str, protocol: str, *, poll: float = 0.5, reload_every: float = 10.0,
                keepalive: tuple[float, float] = (30.0, 10.0)) -> RoleBody:
    """A server for customers' own CMPP or SMPP clients: accounts from SQL (reloaded, so new and revoked ones
    apply), SUBMITs grouped into batches, and every ``poll`` seconds the final states of bound accounts'
    messages (that came in over this protocol) sent as reports, one per part of a long message, and the MO
    for their tenants. Both are marked done only after being written to a live bind (at-least-once); an
    account with no bind keeps them in SQL until it binds again (nothing waits in the server's memory, so a
    restart loses nothing). ``keepalive``: (idle seconds before the server probes a bind, seconds to answer)."""

    def body(stop: threading.Event) -> None:
        from smsguard.sending import CmppServer, SmppServer
        from smsguard.vendors import (
            GroupedSubmitHandler,
            live_accounts,
            mark_mo_delivered,
            mark_reported,
            pending_mo,
            pending_reports,
        )

        host, _, port = listen.rpartition(":")
        server_class = CmppServer if protocol == "cmpp" else SmppServer

        async def main(done: asyncio.Event) -> None:
            accounts = await asyncio.to_thread(live_accounts, ctx.db, ctx.vault)
            every, timeout = keepalive
            probe = ({"active_test_every": every, "active_test_timeout": timeout} if protocol == "cmpp"
                     else {"enquire_link_every": every, "enquire_link_timeout": timeout})
            server = server_class(accounts, GroupedSubmitHandler(ctx), host=host.strip("[]"), port=int(port), **probe)
            await server.start()
            log.info("%s: listening on %s:%d (%d account(s))", protocol, host, server.port, len(accounts))
            loaded = time.monotonic()
            owners: dict[int, tuple[int, str] | None] = {}  # inbound id -> its owner account (pending_mo)
            try:
                while not done.is_set():
                    if time.monotonic() - loaded > reload_every:
                        fresh = await asyncio.to_thread(live_accounts, ctx.db, ctx.vault)
                        server.set_accounts(fresh)
                        loaded = time.monotonic()
                    bound = [sp for sp in list(server.sessions) if server.bound(sp)]
                    reports = await asyncio.to_thread(pending_reports, ctx.db, ctx.vault, bound, protocol=protocol)
                    sent = []
                    for r in reports:  # one unbound since stays in SQL for the next bind
                        written = [server.report(r.sp_id, i, r.phone, r.stat, r.src_id, keep=False) for i in r.msg_ids]
                        if all(written):
                            sent.append(r)
                    mos = await asyncio.to_thread(pending_mo, ctx.db, ctx.vault, bound, protocol=protocol,
                                                  owners=owners)
                    delivered = [m for m in mos if server.mo(m.sp_id, m.phone, m.to, m.text, keep=False)]
                    for m in delivered:
                        owners.pop(m.inbound_id, None)
                    if len(owners) > 100_000:  # only MO still waiting are worth remembering
                        owners.clear()
                    for sessions in list(server.sessions.values()):
                        for s in sessions:
                            with contextlib.suppress(Exception):
                                await s.writer.drain()
                    await asyncio.to_thread(mark_reported, ctx.db, sent)
                    await asyncio.to_thread(mark_mo_delivered, ctx.db, delivered, protocol)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), poll)
            finally:
                await server.stop()

        run_async(stop, main)

    return body
