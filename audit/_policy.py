"""policy.yaml ``audit``: how long events stay in SQL and how often the chain head is signed."""

from __future__ import annotations

from typing import Annotated

import msgspec

from smsguard.core import PolicyFile, PolicySection


class AuditPolicy(PolicySection):
    """The audit log: events older than ``retention_days`` may be archived (never silently deleted); the
    service signs a checkpoint of the chain head every ``checkpoint_minutes`` or every ``checkpoint_events`` new
    events, whichever comes first (and once at start-up)."""

    retention_days: Annotated[int, msgspec.Meta(ge=1)] = 365
    checkpoint_minutes: Annotated[int, msgspec.Meta(ge=1)] = 60
    checkpoint_events: Annotated[int, msgspec.Meta(ge=1)] = 100_000


def audit_policy(file: PolicyFile) -> AuditPolicy:
    """``audit`` of ``file``, validated (errors name the key path); other keys are not read."""
    return file.section(AuditPolicy, at="audit")
