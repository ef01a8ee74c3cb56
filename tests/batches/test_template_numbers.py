"""A template + numbers batch (one set of variable values for every number: the vendor-compatible sends of
issue 17): rendered once, its variable values screened as variables, released like any batch."""

from __future__ import annotations

import pytest

from smsguard import batches
from smsguard.core import SmsguardError

SIG = "示例商城"
BODY = "尊敬的${name}，您的订单${order}已发货，${name}请查收。"  # ${name} twice: one value, two places


def _template(ctx, tenant: int) -> dict:
    return batches.create_template(ctx, tenant, name="t", kind="notification", signature=SIG, body=BODY)


def test_rendered_once_and_released(ctx, tenant: int) -> None:
    tpl = _template(ctx, tenant)
    b = batches.create_batch(ctx, tenant, template_id=tpl["id"], numbers=["13812346001", "13812346002", "1"],
                             variables={"name": "张三", "order": "A1"})
    assert b["state"] == "scheduled" and b["template_id"] == tpl["id"] and b["list_id"] is None
    assert b["counts"] == {"invalid": 1, "queued": 2}
    [content] = b["contents"]
    assert content["decision"] == "pass" and content["recipients"] == 2
    batches.ReleaseWorker(ctx, chunk=50, poll=0.01).run(until_idle=True)
    assert batches.get_batch(ctx, tenant, b["id"])["counts"] == {"invalid": 1, "submitted": 2}


@pytest.mark.parametrize(("order", "code", "state"), [("www.evil.xyz", "variable.link", "review"),
                                                      ("赌场", "lexicon.gambling", "cancelled")])
def test_variable_values_are_screened_as_variables(ctx, tenant: int, order: str, code: str, state: str) -> None:
    """The link would pass in approved template text; inside a variable it is held (the spans are found again
    from the template, the second ${name} included)."""
    tpl = _template(ctx, tenant)
    b = batches.create_batch(ctx, tenant, template_id=tpl["id"], numbers=["13812346003"],
                             variables={"name": "李四", "order": order})
    assert b["state"] == state
    assert code in b["contents"][0]["reason"]


def test_missing_values_and_draft_submit(ctx, tenant: int) -> None:
    tpl = _template(ctx, tenant)
    with pytest.raises(SmsguardError) as e:
        batches.create_batch(ctx, tenant, template_id=tpl["id"], numbers=["13812346004"], variables={"name": "a"})
    assert e.value.code == "batch.variables" and "order" in e.value.message
    draft = batches.create_batch(ctx, tenant, template_id=tpl["id"], numbers=[], variables={"name": "a", "order": "b"},
                                 draft=True)
    assert draft["state"] == "draft"
    with pytest.raises(SmsguardError) as e:  # its numbers were not stored: they come with the submit
        batches.submit_batch(ctx, tenant, draft["id"])
    assert e.value.code == "batch.numbers"
    done = batches.submit_batch(ctx, tenant, draft["id"], numbers=["13812346005"])
    assert done["state"] == "scheduled" and done["counts"] == {"queued": 1}
