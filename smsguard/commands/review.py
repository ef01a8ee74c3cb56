"""``smsguard review demo|export-labels`` and ``smsguard user create|list|passwd``: the reviewer queue's set-up
commands, and the reviewers' decisions written out as training labels.

``review demo`` screens realistic sample messages with the real engine and puts the ones that need a human
into the queue (tenants, batch sizes, masked sample recipients, a few high-risk four-eyes items and identical
copies for bulk decisions, one signature application per tenant), and creates demo reviewer accounts, so
``/review`` shows a working queue at once.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

from smsguard.core import get_settings

from ._accounts import add_list_and_passwd, add_locks_and_unlock, read_password
from .tenant import open_db

# Message templates in the style of real Chinese bulk SMS; {n} varies the numbers so items are not identical.
_TEMPLATES = [
    "【速达金融】无需抵押，凭身份证即可申请贷款，最高{n}万，当天放款，详询139{p}",
    "【安心贷】信用卡逾期？专业代还，低息周转，额度{n}万起，回T退订",
    "【城市停车】您的车辆违章未处理，请登录 http://wz-pay{n}.cc 缴纳罚款，逾期将扣分",
    "【惠民贷】公积金贷款预审通过，可贷{n}万，年化低至3.{n}%，回T退订",
    "【易借钱】急用钱？秒批{n}千元，不查征信，拒收请回复R",
    "【社保服务】您的社保卡即将停用，请访问 http://sb-update{n}.com 重新认证",
    "【金牛理财】新客专享年化{n}%理财，联系客户经理136{p}，回T退订",
    "【积分商城】您有{n}00积分即将清零，请登录 http://jf-mall{n}.net 兑换礼品，回T退订",
    "【速通ETC】您的ETC已失效，请尽快登录 http://etc-renew{n}.cn 更新信息",
    "【佳佳装修】免费量房设计，家装贷款0首付，热线158{p}，退订回T",
]
# Notifications that give a personal mobile number: policy sends them to review at high severity (contact.phone
# by kind), so each needs two approvers (four-eyes), the second a senior.
_HIGH = [
    "【城市物业】通知：{n}号楼本周六停水，有疑问请联系王师傅139{p}",
    "【顺心快递】您的包裹已到驿站，取件码{n}{n}{n}，如未收到请致电快递员138{p}",
    "【阳光培训】家长您好，{n}月课程调整，详情请加班主任电话136{p}咨询",
]
_TENANTS = ("acme-mall", "fastpay", "citylife")
_USERS = (("alice", "reviewer"), ("bob", "senior"), ("carol", "senior"), ("admin", "admin"), ("audrey", "auditor"))
DEMO_PASSWORD = "review-demo-1"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="human review queue: demo data, decided items as training labels")
    rsub = p.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    demo = rsub.add_parser("demo", help="fill the queue with realistic sample items and create demo reviewers")
    demo.add_argument("--items", type=int, default=40, help="about how many items (default 40)")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=run_demo)
    export = rsub.add_parser(
        "export-labels", help="write the decided review items in SQL as training labels (JSON lines)"
    )
    export.add_argument("--out", type=Path, default=None, metavar="FILE", help="output file (default: stdout)")
    export.add_argument("--tenant", default=None, help="only this tenant's items (default: every tenant)")
    export.set_defaults(handler=run_export_labels)

    u = sub.add_parser("user", help="reviewer accounts of the web UI (/review)")
    usub = u.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = usub.add_parser("create", help="create a reviewer account")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=("reviewer", "senior", "admin", "auditor"))
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    create.set_defaults(handler=run_user_create)
    add_list_and_passwd(
        usub, "smsguard.review._users", kind="reviewer", one="a reviewer", columns=(("id", "id"), ("role", "role"))
    )
    add_locks_and_unlock(usub, "review")


def run_export_labels(args: argparse.Namespace) -> int:
    """The labels ``smsguard train --with-reviews`` reads from SQL, as the file ``--with-reviews FILE`` reads."""
    from smsguard.storage import get_tenant
    from smsguard.training.reviews import export_jsonl, sql_source

    db = open_db()
    tenant_id = None if args.tenant is None else get_tenant(db, args.tenant).id
    n = export_jsonl(sql_source(db, tenant_id=tenant_id), args.out)
    where = args.out or "stdout"
    print(f"wrote {n:,} reviewer label(s) to {where}", file=sys.stderr if args.out is None else sys.stdout)
    return 0


def run_user_create(args: argparse.Namespace) -> int:
    from smsguard.review._users import create_user

    user = create_user(open_db(), args.username, read_password(args), args.role)
    print(f"user {user.username} created (id {user.id}, role {user.role})")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    import msgspec

    from smsguard import review
    from smsguard.core import ConflictError
    from smsguard.engine import Engine, Message, default_config
    from smsguard.review._users import UserError, create_user
    from smsguard.storage import create_tenant, get_tenant

    db = open_db()
    rng = random.Random(args.seed)
    tenants = {}
    for name in _TENANTS:
        try:
            tenants[name] = create_tenant(db, name).id
        except ConflictError:
            tenants[name] = get_tenant(db, name).id
    created = []
    for name, role in _USERS:
        try:
            create_user(db, name, DEMO_PASSWORD, role)
            created.append(f"{name} ({role})")
        except UserError:
            pass

    engine = Engine(default_config())
    texts = []
    for i in range(args.items * 3):
        t = _TEMPLATES[i % len(_TEMPLATES)]
        texts.append(t.format(n=rng.randint(2, 9), p=f"{rng.randint(0, 99_999_999):08d}"))
    verdicts = engine.screen_many([Message(text=t) for t in texts])
    chosen = [(t, v) for t, v in zip(texts, verdicts, strict=True) if v.decision == "review"][: args.items]
    high = [t.format(n=rng.randint(2, 9), p=f"{rng.randint(0, 99_999_999):08d}") for t in _HIGH]
    high_verdicts = engine.screen_many([Message(text=t, kind="notification") for t in high])
    chosen += [(t, v) for t, v in zip(high, high_verdicts, strict=True) if v.decision == "review"]
    # identical copies of one reviewable text, from several tenants: one bulk decision settles them
    dup_text, dup = chosen[0] if chosen else ("", None)
    run = os.urandom(3).hex()  # a fresh source_ref per run: running the demo twice adds a second set
    n = 0
    with db.begin() as conn:
        for i, (text, verdict) in enumerate(chosen):
            batch_size = rng.choice([0, 0, 120, 800, 3_000, 25_000])
            numbers = [f"1{rng.choice('3589')}{rng.randint(0, 999_999_999):09d}" for _ in range(3)]
            recipients = numbers if batch_size else []
            review.submit(
                conn,
                tenant_id=tenants[_TENANTS[i % len(_TENANTS)]],
                source="demo",
                source_ref=f"{run}:{i}",
                text=text,
                verdict=msgspec.to_builtins(verdict),
                priority=rng.choice([0, 0, 0, 1, 2]),
                batch_size=batch_size,
                sample_recipients=recipients,
            )
            n += 1
        if dup is not None:
            for j in range(3):
                review.submit(
                    conn,
                    tenant_id=tenants[_TENANTS[j]],
                    source="demo",
                    source_ref=f"{run}:dup{j}",
                    text=dup_text,
                    verdict=msgspec.to_builtins(dup),
                    batch_size=500,
                )
                n += 1
    signatures = _demo_signatures(db, tenants, run)
    n += signatures
    kinds = {
        "high severity (four-eyes)": sum(1 for _, v in chosen if _severity(v) == "high"),
        "identical copies": 4 if dup is not None else 0,
        "signature applications": signatures,
    }
    print(
        f"review demo: {n} items queued for review (tenants {', '.join(_TENANTS)}; "
        + ", ".join(f"{k}: {v}" for k, v in kinds.items())
        + ")"
    )
    if created:
        print(f"demo reviewers created, password '{DEMO_PASSWORD}': {', '.join(created)}")
    else:
        print(f"demo reviewers exist already (alice, bob, carol, admin, audrey; password '{DEMO_PASSWORD}')")
    settings = get_settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(
        f"open http://{host}:{settings.port}/review and log in (a running `smsguard serve` dispatches them within 1 s)"
    )
    return 0


_DEMO_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _demo_signatures(db: object, tenants: dict[str, int], run: str) -> int:
    """Signature applications (queue source ``signature``), one per tenant, each with a placeholder licence
    encrypted with the deployment's document keys (what ``/review/signatures/<id>`` offers to download)."""
    from smsguard import filing
    from smsguard.core import load_secrets

    vault = filing.DocumentVault(load_secrets(get_settings()).phone_keys)
    n = 0
    for i, tid in enumerate(tenants.values()):
        filing.apply(
            db,
            vault,
            tid,
            name=f"演示签名{run}{i}",
            kind="company",
            use="self",
            files=[("营业执照.pdf", _DEMO_PDF)],
            actor="system:demo",
        )
        n += 1
    return n


def _severity(verdict: object) -> str:
    ranks = {"low": 1, "medium": 2, "high": 3}
    return max((r.severity for r in getattr(verdict, "reasons", ())), key=lambda s: ranks.get(s, 0), default="low")
