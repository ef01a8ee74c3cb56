"""The batches feature's policy keys (issue 7): typed defaults, errors that name the key, and the quiet-hours
window. The batches loader reads its own keys only; the other packages' keys are theirs to check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsguard.batches import BatchesPolicy, batches_policy, classify, in_quiet_hours
from smsguard.core import PROJECT_ROOT, PolicyError, PolicyFile

BASE = (PROJECT_ROOT / "policy.yaml").read_bytes()


def _policy(extra: str) -> BatchesPolicy:
    return batches_policy(PolicyFile.parse(BASE + b"\n" + extra.encode()))


def test_shipped_sections() -> None:
    p = _policy("")
    assert [(c.per, c.max) for c in p.caps.verification] == [(60, 1), (3600, 5), (86400, 10)]
    assert p.quiet_hours.timezone == "Asia/Shanghai" and p.quiet_hours.kinds == ["marketing"]
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


def test_defaults_when_the_keys_are_absent() -> None:
    p = batches_policy(PolicyFile.parse(b"version: x\n"))
    assert p == BatchesPolicy()
    assert [(c.per, c.max) for c in p.caps.marketing] == [(86400, 1)]


@pytest.mark.parametrize(
    ("extra", "where", "code"),
    [
        ("caps: {verification: [{per: 0, max: 1}]}", "$.caps.verification[0]", "policy.value"),
        ("quiet_hours: {start: '25:00'}", "$.quiet_hours.start", "policy.value"),
        ("quiet_hours: {timezone: Mars/Olympus}", "$.quiet_hours.timezone", "policy.value"),
        ("caps: {verification: [{per: 60}]}", "$.caps.verification[0]", "policy.schema"),
        ("caps: {promo: []}", "$.caps", "policy.schema"),
        ("quiet_hours: {kinds: [promo]}", "$.quiet_hours.kinds[0]", "policy.schema"),
        ("optout_keywords: TD", "$.optout_keywords", "policy.schema"),
    ],
)
def test_errors_name_the_key(extra: str, where: str, code: str) -> None:
    with pytest.raises(PolicyError) as e:
        _policy(extra)
    assert (e.value.where, e.value.code) == (f"policy.yaml: {where}", code)


def test_other_packages_keys_are_not_read_here() -> None:
    p = _policy("prices: {mobile: -1}\nthresholds: {review_at: 7}")  # billing's and the engine's to reject
    assert p.quiet_hours.start == "20:00"


def test_quiet_hours_window() -> None:
    q = _policy("").quiet_hours
    assert in_quiet_hours(q, "notification", datetime(2026, 11, 25, 14, tzinfo=UTC)) is None
    assert in_quiet_hours(q, "marketing", datetime(2026, 11, 25, 4, tzinfo=UTC)) is None  # 12:00 local
    resume = in_quiet_hours(q, "marketing", datetime(2026, 11, 25, 14, tzinfo=UTC))  # 22:00 local
    assert resume == datetime(2026, 11, 26, 0, tzinfo=UTC)  # 08:00 local, the next morning
    assert in_quiet_hours(q, "marketing", datetime(2026, 11, 25, 23, tzinfo=UTC)) == datetime(
        2026, 11, 26, 0, tzinfo=UTC
    )
