"""Ported numbers (携号转网) are priced and stored by the network they are on now, in contact lists, in
batches of numbers, and in batches from lists imported before the portability data; both backends."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import delete, select

from smsguard import batches
from smsguard.batches._tables import contacts, recipients
from smsguard.phones import number_portability, portability_for

SIG = "示例商城"


@pytest.fixture
def portability(ctx):
    p = portability_for(ctx.db, ctx.vault)
    yield p
    with ctx.db.begin() as conn:
        conn.execute(delete(number_portability))
    p.clear_cache()


def _ported(portability, *lines: str) -> None:
    assert portability.import_file(io.BytesIO(("\n".join(lines) + "\n").encode())).rejected == 0


def test_content_batch_prices_ported_numbers(ctx, tenant: int, portability) -> None:
    content = f"【{SIG}】您的快递已到驿站，请及时取件。"
    before = batches.create_batch(ctx, tenant, content=content, numbers=["15012345678", "17001234567"])
    _ported(portability, "17001234567,unicom")
    after = batches.create_batch(ctx, tenant, content=content, numbers=["15012345678", "17001234567"])
    with ctx.db.connect() as conn:
        carriers = {bid: sorted(conn.execute(select(recipients.c.carrier).where(recipients.c.batch_id == bid))
                                .scalars()) for bid in (before["id"], after["id"])}
    assert carriers[before["id"]] == ["mobile", "virtual"]  # 150: China Mobile (was "other" before the block table)
    assert carriers[after["id"]] == ["mobile", "unicom"]  # the virtual number ported to Unicom
    price = ctx.policy.prices
    assert float(before["estimate"]) == pytest.approx(price.for_carrier("mobile") + price.for_carrier("virtual"))
    assert float(after["estimate"]) == pytest.approx(price.for_carrier("mobile") + price.for_carrier("unicom"))


def test_lists_take_portability_at_import_and_at_batch_creation(ctx, tenant: int, portability) -> None:
    early = batches.import_contacts(ctx, tenant, "early", io.BytesIO(b"phone\n15112345678\n13812345678\n"))
    _ported(portability, "15112345678,telecom")
    late = batches.import_contacts(ctx, tenant, "late", io.BytesIO(b"phone\n15112345678\n13812345678\n"))
    with ctx.db.connect() as conn:
        def carriers(list_id: int) -> list[str]:
            return sorted(conn.execute(select(contacts.c.carrier).where(contacts.c.list_id == list_id)).scalars())

        assert carriers(early["id"]) == ["mobile", "mobile"]  # imported before the portability data
        assert carriers(late["id"]) == ["mobile", "telecom"]
    tpl = batches.create_template(ctx, tenant, name="t", kind="notification", signature=SIG, body="您的订单已发货。")
    b = batches.create_batch(ctx, tenant, template_id=tpl["id"], list_id=early["id"])
    with ctx.db.connect() as conn:
        got = sorted(conn.execute(select(recipients.c.carrier).where(recipients.c.batch_id == b["id"])).scalars())
    assert got == ["mobile", "telecom"]  # the batch routes and prices by the network the number is on now
