"""The policy sections of issue 7: typed defaults, and errors that name the key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsguard.batches import classify, in_quiet_hours
from smsguard.core import PolicyError
from smsguard.engine import PROJECT_ROOT, parse_policy
from smsguard.engine._rules import RULE_CODES

BASE = (PROJECT_ROOT / "policy.yaml").read_bytes()


def _policy(extra: str):
    return parse_policy(BASE + b"\n" + extra.encode(), known_rules=frozenset(RULE_CODES))[0]


def test_shipped_sections() -> None:
    p = _policy("")
    assert [(c.per, c.max) for c in p.caps.verification] == [(60, 1), (3600, 5), (86400, 10)]
    assert p.quiet_hours.timezone == "Asia/Shanghai" and p.quiet_hours.kinds == ["marketing"]
    assert p.prices.for_carrier("virtual") == 0.05 and p.prices.for_carrier("nonsense") == p.prices.other
    for reply, action in (
        ("TD", "opt_out"),
        (" t ", "opt_out"),
        ("退订", "opt_out"),
        ("Unsubscribe!", "opt_out"),
        ("STOP", "opt_out"),
        ("取消", "opt_out"),
        ("START", "opt_in"),
        ("订阅", "opt_in"),
        ("我要投诉你们", "complaint"),
        ("好的谢谢", "none"),
        ("td please", "none"),
    ):
        assert classify(p, reply) == action, reply


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("caps: {verification: [{per: 0, max: 1}]}", "$.caps.verification[0]"),
        ("quiet_hours: {start: '25:00'}", "$.quiet_hours.start"),
        ("quiet_hours: {timezone: Mars/Olympus}", "$.quiet_hours.timezone"),
        ("prices: {mobile: -1}", "$.prices.mobile"),
        ("caps: {verification: [{per: 60}]}", "$.caps.verification[0]"),
    ],
)
def test_errors_name_the_key(extra: str, where: str) -> None:
    with pytest.raises(PolicyError) as e:
        _policy(extra)
    assert e.value.where == f"policy.yaml: {where}"


def test_quiet_hours_window() -> None:
    p = _policy("")
    assert in_quiet_hours(p, "notification", datetime(2026, 11, 25, 14, tzinfo=UTC)) is None
    assert in_quiet_hours(p, "marketing", datetime(2026, 11, 25, 4, tzinfo=UTC)) is None  # 12:00 local
    resume = in_quiet_hours(p, "marketing", datetime(2026, 11, 25, 14, tzinfo=UTC))  # 22:00 local
    assert resume == datetime(2026, 11, 26, 0, tzinfo=UTC)  # 08:00 local, the next morning
    assert in_quiet_hours(p, "marketing", datetime(2026, 11, 25, 23, tzinfo=UTC)) == datetime(
        2026, 11, 26, 0, tzinfo=UTC
    )
