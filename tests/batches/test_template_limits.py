"""Template limits are checked before anything is compiled or screened (issue 15: 10,000 variables took 13 s)."""

from __future__ import annotations

import pytest

from smsguard import batches
from smsguard.batches._templates import MAX_TEMPLATE_BODY, MAX_TEMPLATE_VARIABLES, Template
from smsguard.webauth import http_status

SIG = "示例商城"


def test_ten_thousand_variables_are_refused_up_front(ctx, tenant: int, monkeypatch) -> None:
    """Refused before the template is compiled or screened (that took 13 s): both are made to fail if reached.
    How fast a refusal is belongs to a benchmark, not to this test."""
    from smsguard.batches import _templates

    def reached(*_a, **_k):
        raise AssertionError("compiled or screened before the limits were checked")

    monkeypatch.setattr(_templates.Template, "compile", reached)
    monkeypatch.setattr(ctx, "require_engine", reached)
    body = "".join(f"${{v{i}}}" for i in range(10_000))
    with pytest.raises(batches.BatchError) as e:
        batches.create_template(ctx, tenant, name="many", kind="notification", signature=SIG, body=body)
    assert e.value.code in ("template.too_long", "template.too_many_variables") and e.value.where == "$.body"
    assert http_status(e.value) == 400  # the API's one status table


def test_too_many_variables_in_a_short_body_is_refused(ctx, tenant: int) -> None:
    with pytest.raises(batches.BatchError) as e:
        batches.create_template(ctx, tenant, name="many", kind="notification", signature=SIG,
                                body="${v}" * (MAX_TEMPLATE_VARIABLES + 1))
    assert e.value.code == "template.too_many_variables" and e.value.where == "$.body"


def test_too_long_a_body_is_refused(ctx, tenant: int) -> None:
    with pytest.raises(batches.BatchError) as e:
        batches.create_template(ctx, tenant, name="long", kind="notification", signature=SIG,
                                body="您好" * MAX_TEMPLATE_BODY)
    assert e.value.code == "template.too_long" and e.value.where == "$.body"


def test_the_limit_itself_is_accepted(ctx, tenant: int) -> None:
    body = "您好" + "".join(f"${{v{i}}}" for i in range(MAX_TEMPLATE_VARIABLES))
    tpl = batches.create_template(ctx, tenant, name="max", kind="notification", signature=SIG, body=body)
    assert len(tpl["variables"]) == MAX_TEMPLATE_VARIABLES


def test_compiling_keeps_first_seen_slots() -> None:
    tpl = Template.compile(SIG, "${a}${b}${a}${c}${b}")
    assert tpl.variables == ("a", "b", "c") and tpl.slots == (0, 1, 0, 2, 1)
