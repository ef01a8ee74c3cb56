"""The batches feature's keys of policy.yaml: frequency caps and quiet hours (applied at release) and the
words of an MO reply that opt a number out, back in, or record a complaint."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import msgspec

from smsguard.billing import Prices, prices_policy
from smsguard.core import PolicyFile, PolicySection
from smsguard.engine import RULE_CODES, Policy, screening_policy

Kind = Literal["verification", "notification", "marketing"]
KINDS: tuple[Kind, ...] = ("verification", "notification", "marketing")


class FrequencyCap(PolicySection):
    """At most ``max`` messages per number, signature and kind in each fixed window of ``per`` seconds."""

    per: int
    max: int


class CapRules(PolicySection):
    """Frequency caps per message kind, checked at release time (Redis counters, rebuilt from SQL)."""

    verification: list[FrequencyCap] = msgspec.field(
        default_factory=lambda: [FrequencyCap(per=60, max=1), FrequencyCap(per=3600, max=5),
                                 FrequencyCap(per=86400, max=10)]
    )
    notification: list[FrequencyCap] = msgspec.field(
        default_factory=lambda: [FrequencyCap(per=3600, max=10), FrequencyCap(per=86400, max=30)]
    )
    marketing: list[FrequencyCap] = msgspec.field(default_factory=lambda: [FrequencyCap(per=86400, max=1)])

    def for_kind(self, kind: str) -> list[FrequencyCap]:
        return getattr(self, kind, [])


class QuietHours(PolicySection):
    """Local hours in which ``kinds`` are not released; their recipients are deferred to ``end``, not dropped."""

    start: str = "20:00"
    end: str = "08:00"
    timezone: str = "Asia/Shanghai"
    kinds: list[Kind] = msgspec.field(default_factory=lambda: ["marketing"])


class BatchesPolicy(PolicySection):
    """The top-level keys of policy.yaml the batches feature reads (release and MO replies)."""

    caps: CapRules = CapRules()
    quiet_hours: QuietHours = QuietHours()
    optout_keywords: list[str] = msgspec.field(
        default_factory=lambda: ["td", "t", "n", "r", "退订", "取消", "stop", "unsubscribe", "退", "qx"]
    )
    """MO replies (the whole reply, case, spaces and punctuation ignored) that opt a number out."""
    optin_keywords: list[str] = msgspec.field(default_factory=lambda: ["start", "订阅", "恢复"])
    """MO replies that opt a number back in."""
    complaint_keywords: list[str] = msgspec.field(default_factory=lambda: ["投诉", "举报", "12321"])
    """Words anywhere in an MO reply that record a complaint (and opt the number out tenant-wide)."""


_HH_MM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def batches_policy(file: PolicyFile) -> BatchesPolicy:
    """The batches keys of ``file``, validated (errors name the key path); other keys are not read."""
    policy = file.section(BatchesPolicy)
    for kind in KINDS:
        for i, cap in enumerate(policy.caps.for_kind(kind)):
            if cap.per < 1 or cap.max < 1:
                file.fail(f"caps.{kind}[{i}]", "per (seconds) and max must both be at least 1")
    q = policy.quiet_hours
    for key in ("start", "end"):
        if not _HH_MM.fullmatch(getattr(q, key)):
            file.fail(f"quiet_hours.{key}", f"{getattr(q, key)!r} must be HH:MM (24 h)")
    try:
        zoneinfo.ZoneInfo(q.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        file.fail("quiet_hours.timezone", f"unknown time zone {q.timezone!r}")
    return policy


class PolicySections(Protocol):
    """What the batches feature reads of the policy document; ``smsguard.runtime.PolicyDocument`` is one."""

    @property
    def screening(self) -> Policy: ...
    @property
    def batches(self) -> BatchesPolicy: ...
    @property
    def prices(self) -> Prices: ...


@dataclass(frozen=True, slots=True)
class _Sections:
    screening: Policy
    batches: BatchesPolicy
    prices: Prices


def read_sections(path: Path, *, screening: Policy | None = None) -> PolicySections:
    """The sections of the policy at ``path`` the batches feature reads, for a Context made without a Runtime
    (its document validates the whole file); ``screening``: the engine's, when there is one."""
    file = PolicyFile.read(path)
    if screening is None:
        screening = screening_policy(file, known_rules=frozenset(RULE_CODES))[0]
    return _Sections(screening, batches_policy(file), prices_policy(file))
