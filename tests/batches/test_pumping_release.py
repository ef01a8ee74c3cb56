"""The release worker passes verification codes through the anti-pumping guard (on both backends): a number
over its velocity across tenants is ``refused`` with the guard's reason code, never handed over."""

from __future__ import annotations

import dataclasses
import io
import random
import uuid

from smsguard import batches
from smsguard.batches import ReleaseWorker
from smsguard.pumping import NUMBER_VELOCITY, PumpingGuard

SIG = "示例商城"


def _csv(rows: list[str]) -> io.BytesIO:
    return io.BytesIO("\n".join(rows).encode())


def test_a_number_over_its_velocity_across_tenants_is_refused_at_release(backend, ctx, tenant, unique_name) -> None:
    from smsguard.storage import create_tenant

    other = create_tenant(ctx.db, unique_name("bt")).id
    ns = f"{backend.namespace}:pr-{uuid.uuid4().hex[:8]}"
    settings = dataclasses.replace(backend.settings(), pumping_number_limit=1, pumping_block_after=10)
    guard = PumpingGuard(db=ctx.db, redis=ctx.redis, vault=ctx.vault, settings=settings, namespace=ns)
    number = "1478" + f"{random.randrange(10**7):07d}"
    made = []
    for t in (tenant, other):  # caps are per tenant: only the guard counts across them
        tpl = batches.create_template(ctx, t, name="otp", kind="verification", signature=SIG,
                                      body="您的验证码是${code}，5分钟内有效。")
        lst = batches.import_contacts(ctx, t, "l", _csv(["phone,code", f"{number},123456"]))
        made.append((t, batches.create_batch(ctx, t, template_id=tpl["id"], list_id=lst["id"])["id"]))
    try:
        ReleaseWorker(ctx, chunk=50, poll=0.01, pumping=guard).run(until_idle=True)
        (t1, b1), (t2, b2) = made
        assert batches.get_batch(ctx, t1, b1)["counts"] == {"submitted": 1}
        assert batches.get_batch(ctx, t2, b2)["counts"] == {"refused": 1}
        [row] = batches.list_recipients(ctx, t2, b2)
        assert row["status"] == "refused" and row["detail"] == NUMBER_VELOCITY
    finally:
        keys = list(ctx.redis.scan_iter(match=f"{ns}:*"))
        if keys:
            ctx.redis.delete(*keys)
