"""Review settings, read from the environment (they are operations policy, not screening policy).

``SMSGUARD_REVIEW_LEASE``            seconds a claimed item stays invisible to other reviewers (default 300)
``SMSGUARD_REVIEW_FOUR_EYES_BATCH``  batches larger than this need two approvers (default 10000)
``SMSGUARD_REVIEW_FOUR_EYES_SEVERITY`` comma-separated severities that need two approvers (default ``high``)
``SMSGUARD_REVIEW_SECRET``           secret of the CSRF tokens (default: random per data directory, see review_ui)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from engine import SmsguardError


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    lease_seconds: float = 300.0
    four_eyes_batch_size: int = 10_000
    four_eyes_severities: frozenset[str] = frozenset({"high"})

    def required_approvals(self, severity: str, batch_size: int) -> int:
        """Two distinct approvers (the second senior or above) for high-risk items, one otherwise."""
        return 2 if severity in self.four_eyes_severities or batch_size > self.four_eyes_batch_size else 1


def load_review_config(env: Mapping[str, str] | None = None) -> ReviewConfig:
    env = os.environ if env is None else env
    try:
        lease = float(env.get("SMSGUARD_REVIEW_LEASE") or 300)
    except ValueError:
        raise SmsguardError("must be a number of seconds", where="SMSGUARD_REVIEW_LEASE") from None
    try:
        batch = int(env.get("SMSGUARD_REVIEW_FOUR_EYES_BATCH") or 10_000)
    except ValueError:
        raise SmsguardError("must be an integer", where="SMSGUARD_REVIEW_FOUR_EYES_BATCH") from None
    if lease <= 0:
        raise SmsguardError("must be positive", where="SMSGUARD_REVIEW_LEASE")
    severities = env.get("SMSGUARD_REVIEW_FOUR_EYES_SEVERITY") or "high"
    return ReviewConfig(
        lease_seconds=lease,
        four_eyes_batch_size=batch,
        four_eyes_severities=frozenset(s.strip() for s in severities.split(",") if s.strip()),
    )
