"""``smsguard console …``: accounts of the customer web console (``/console``) and a demo.

* ``user create NAME --tenant T [--role customer|viewer] [--password-stdin]``: a console account bound to T.
* ``user list`` · ``user passwd NAME`` · ``user disable NAME``.
* ``timezone --tenant T ZONE``: the tenant's time zone (schedule pickers and pages use it; default Asia/Shanghai).
* ``demo``: tenant ``demo`` (its registered signatures are in policy.yaml), a console user ``demo`` with a
  printed password, a sample contact list (with a few bad lines), an approved marketing template, and one
  batch sent through the loopback gateway so the report page has data. Runs in seconds; safe to repeat.
* ``loopback [--until-idle]``: the whole sending side in one process, for demos and tests: the release
  worker, a gateway worker on the loopback gateway (accepts everything and reports it delivered; numbers
  ending 9002/9003/9004 are rejected / undelivered / expired, see ``sending/_loopback.py``) and the
  delivery-report relay into SQL. No real SMS leaves the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import signal
import threading

from smsguard.core import SmsguardError

from ._accounts import add_list_and_passwd, add_locks_and_unlock, read_password
from .tenant import open_db

DEMO_TENANT = "demo"
DEMO_USER = "demo"
DEMO_SIGNATURE = "示例商城"
DEMO_TEMPLATE = "${姓名}您好，示例商城双11大促，全场5折起，会员再享95折！回T退订"
DEMO_NOTICE = "${姓名}您好，您在示例商城的积分将于本月底到期，请及时使用。"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("console", help="customer web console: accounts, demo, loopback sending")
    csub = p.add_subparsers(dest="console_command", required=True, metavar="ACTION")

    u = csub.add_parser("user", help="console accounts (bound to one tenant)")
    usub = u.add_subparsers(dest="console_user_command", required=True, metavar="ACTION")
    create = usub.add_parser("create", help="create a console account for a tenant")
    create.add_argument("username")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", default="customer", choices=("customer", "viewer"))
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    create.set_defaults(handler=run_user_create)
    add_list_and_passwd(usub, "smsguard.console._users", kind="console", one="a console account",
                        columns=(("id", "id"), ("tenant", "tenant"), ("role", "role"), ("tz", "time_zone")))
    add_locks_and_unlock(usub, "console")
    disable = usub.add_parser("disable", help="disable a console account (its sessions stop working)")
    disable.add_argument("username")
    disable.set_defaults(handler=run_user_disable)

    tz = csub.add_parser("timezone", help="set a tenant's time zone (IANA name, e.g. Asia/Shanghai)")
    tz.add_argument("zone")
    tz.add_argument("--tenant", required=True)
    tz.set_defaults(handler=run_timezone)

    demo = csub.add_parser("demo", help="demo tenant, user, contact list, template and a delivered batch")
    demo.add_argument("--password", default=None, help="the demo user's password (default: random, printed)")
    demo.add_argument("--no-send", action="store_true", help="do not send the sample batch through loopback")
    demo.set_defaults(handler=run_demo)

    lb = csub.add_parser("loopback", help="release worker + loopback gateway + report relay in one process")
    lb.add_argument("--until-idle", action="store_true", help="exit once nothing is due and all reports are in")
    lb.add_argument("--rate", type=float, default=0.0, help="messages per second through the gateway (0 = no limit)")
    lb.add_argument("--chunk", type=int, default=5000, help="recipients per release chunk")
    lb.set_defaults(handler=run_loopback)


def run_user_create(args: argparse.Namespace) -> int:
    from smsguard.console._users import create_user

    user = create_user(open_db(), args.username, read_password(args), tenant=args.tenant, role=args.role)
    print(f"console user {user.username} created (id {user.id}, tenant {user.tenant}, role {user.role})")
    return 0


def run_user_disable(args: argparse.Namespace) -> int:
    from smsguard.console._users import disable_user

    disable_user(open_db(), args.username)
    print(f"console user {args.username} disabled")
    return 0


def run_timezone(args: argparse.Namespace) -> int:
    from smsguard.console._users import set_time_zone

    set_time_zone(open_db(), args.tenant, args.zone)
    print(f"tenant {args.tenant}: time zone {args.zone}")
    return 0


def _demo_csv(rows: int = 48) -> bytes:
    """Contacts with a name column, plus the kinds of bad lines real uploads have."""
    import random

    rng = random.Random(11)
    names = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷", "徐明", "孙丽"]
    prefixes = ["138", "139", "150", "186", "133", "177", "158", "189", "131", "170"]
    lines = ["手机号,姓名"]
    for i in range(rows):
        lines.append(f"{rng.choice(prefixes)}{rng.randint(0, 99_999_999):08d},{names[i % len(names)]}")
    lines[5] = "1381234567,王芳"  # one digit short
    lines[9] = "021-61234567,赵磊"  # a landline
    lines.append(lines[3])  # a duplicate
    lines.append("13900009003,测试失败")  # the loopback gateway reports this one undelivered
    return ("\n".join(lines) + "\n").encode()


def run_demo(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from smsguard.batches import create_batch, create_template, import_contacts, in_quiet_hours
    from smsguard.console._users import ConsoleUserError, create_user, set_password, set_time_zone
    from smsguard.core import ConflictError, get_settings
    from smsguard.runtime import Runtime
    from smsguard.storage import create_tenant, get_tenant

    db = open_db()
    try:
        tid = create_tenant(db, DEMO_TENANT).id
    except ConflictError:
        tid = get_tenant(db, DEMO_TENANT).id
    password = args.password or secrets.token_urlsafe(9)
    try:
        create_user(db, DEMO_USER, password, tenant=DEMO_TENANT)
    except ConsoleUserError:
        set_password(db, DEMO_USER, password)  # re-running the demo prints a password that works
    set_time_zone(db, DEMO_TENANT, "Asia/Shanghai")
    loc = Runtime(get_settings()).open(migrate_db=False)
    ctx = loc.batch_context()
    actor = "cli:console-demo"
    try:
        lst = import_contacts(ctx, tid, "双11 会员 (demo)", io.BytesIO(_demo_csv()), actor=actor)
        tpl = create_template(
            ctx, tid, name="双11 会员促销", kind="marketing", signature=DEMO_SIGNATURE, body=DEMO_TEMPLATE, actor=actor
        )
        notice = create_template(
            ctx, tid, name="积分到期提醒", kind="notification", signature=DEMO_SIGNATURE, body=DEMO_NOTICE, actor=actor
        )
        batch = None
        if not args.no_send:
            # Marketing is held in quiet hours (policy quiet_hours): at night the demo sends the notification, so
            # the report page has a delivered batch whatever the time.
            sent = notice if in_quiet_hours(ctx.policy.batches.quiet_hours, "marketing", datetime.now(UTC)) else tpl
            if sent["status"] == "approved":
                batch = create_batch(
                    ctx, tid, name=f"{sent['name']} (demo)", template_id=sent["id"], list_id=lst["id"], actor=actor
                )
                _loopback(ctx, loc.redis_url, until_idle=True, quiet=True)
    finally:
        loc.close()
    settings = get_settings()
    print(
        f"console demo ready: tenant {DEMO_TENANT}, list #{lst['id']} ({lst['valid']} valid, "
        f"{lst['invalid']} invalid, {lst['duplicates']} duplicate), templates #{tpl['id']} ({tpl['status']}), "
        f"#{notice['id']} ({notice['status']})" + (f", batch #{batch['id']}" if batch else "")
    )
    print(f"\n  open http://{settings.host}:{settings.port}/console  user: {DEMO_USER}  password: {password}\n")
    return 0


def run_loopback(args: argparse.Namespace) -> int:
    from smsguard.core import get_settings
    from smsguard.runtime import Runtime

    loc = Runtime(get_settings()).open()
    ctx = loc.batch_context()
    try:
        _loopback(ctx, loc.redis_url, until_idle=args.until_idle, rate=args.rate, chunk=args.chunk)
    finally:
        loc.close()
    return 0


def _loopback(
    ctx, redis_url: str, *, until_idle: bool, quiet: bool = False, rate: float = 0.0, chunk: int = 5000
) -> None:
    """Release worker (a thread) + loopback gateway worker + event relay (asyncio), until stopped or idle."""
    import asyncio

    from smsguard.batches import ReleaseWorker, SqlEventSink, SqlSentJournal
    from smsguard.batches._settle import settle_batches
    from smsguard.sending import EventRelay, MessageStore, VaultPhones, redis_client
    from smsguard.sending._channels import ChannelSpec
    from smsguard.sending._gateway_role import GatewayRole

    stop = threading.Event()
    release = ReleaseWorker(ctx, chunk=chunk, worker_id="console-loopback-release")
    rebuilt = release.prepare()
    if not quiet:
        print(f"READY loopback {json.dumps(rebuilt)}", flush=True)

    died: list[BaseException] = []  # a worker that died: the command must not wait (or exit 0) without it

    def release_loop() -> None:
        try:
            release.run(stop, until_idle=until_idle)
        except BaseException as e:  # reported by the main loop, which stops the others and exits 2
            died.append(e)
        finally:
            if until_idle:
                released.set()

    released = threading.Event()

    async def main() -> None:
        r = redis_client(redis_url)
        store = MessageStore(r, namespace=ctx.send_namespace, seal=VaultPhones(ctx.vault))
        # the gateway role over one loopback channel: heartbeats, so batches do not say "waiting for a channel"
        spec = ChannelSpec(name="loopback", protocol="loopback", window=64, rate=rate, receipt_deadline=60.0)
        gateway = GatewayRole(redis_url, ctx.send_namespace, [spec], process="console-loopback",
                              seal=VaultPhones(ctx.vault), journal=SqlSentJournal(ctx))
        relay = EventRelay(store, SqlEventSink(ctx), consumer="console-loopback")
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        tasks = [asyncio.create_task(gateway.run(done)), asyncio.create_task(relay.run(done))]
        thread = threading.Thread(target=release_loop, name="release", daemon=True)
        thread.start()
        while not done.is_set():
            await asyncio.sleep(0.2)
            for task in tasks:  # the gateway worker or the relay returned or raised before being told to stop
                if task.done() and not task.cancelled() and task.exception() is not None:
                    died.append(task.exception())  # type: ignore[arg-type]
            if until_idle and gateway.worker is not None and gateway.worker.seal_errors:
                died.append(gateway.worker.seal_errors[0])  # a drain that can never finish: another phone key
            await asyncio.to_thread(settle_batches, ctx)  # sending → done once every recipient is final
            if died or (until_idle and released.is_set() and await _settled(ctx)):
                done.set()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await r.aclose()
        thread.join(timeout=10)

    asyncio.run(main())
    if died:
        e = died[0]
        why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise SmsguardError(f"a worker died ({why}); the others were stopped", where="console loopback",
                            code="worker.died")


async def _settled(ctx) -> bool:
    """No batch is releasing and every handed-over recipient has its final delivery status."""
    import anyio.to_thread
    from sqlalchemy import func, select

    from smsguard.batches._tables import batches, recipients

    def count() -> int:
        with ctx.db.connect() as conn:
            releasing = conn.execute(
                select(func.count()).select_from(batches).where(batches.c.state.in_(("releasing", "sending")))
            ).scalar_one()
            waiting = conn.execute(
                select(func.count()).select_from(recipients).where(recipients.c.status == "submitted")
            ).scalar_one()
        return releasing + waiting

    return await anyio.to_thread.run_sync(count) == 0
