"""Review settings (operations policy, not screening policy), taken from the process's settings:
``SMSGUARD_REVIEW_LEASE``, ``SMSGUARD_REVIEW_FOUR_EYES_BATCH``, ``SMSGUARD_REVIEW_FOUR_EYES_SEVERITY``."""

from __future__ import annotations

from dataclasses import dataclass, field

from smsguard.core import Settings, get_settings
from smsguard.engine import Policy

from ._policy import ReviewPolicy, ReviewReason


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    lease_seconds: float = 300.0
    four_eyes_batch_size: int = 10_000
    four_eyes_severities: frozenset[str] = frozenset({"high"})
    queue: ReviewPolicy = field(default_factory=ReviewPolicy)
    """policy.yaml ``review``: service-level targets and the canned decision reasons."""
    categories: tuple[str, ...] = ()
    """The policy's content categories: the only values a decision's category may take (empty: any)."""

    def reasons_for(self, category: str | None) -> list[ReviewReason]:
        """The canned reasons offered for an item of ``category``: its own first, then the general ones."""
        own = [r for r in self.queue.reasons if category and category in r.categories]
        return own + [r for r in self.queue.reasons if not r.categories]

    def reason(self, code: str) -> ReviewReason | None:
        return next((r for r in self.queue.reasons if r.code == code), None)

    def required_approvals(self, severity: str, batch_size: int) -> int:
        """Two distinct approvers (the second senior or above) for high-risk items, one otherwise."""
        return 2 if severity in self.four_eyes_severities or batch_size > self.four_eyes_batch_size else 1


def load_review_config(
    settings: Settings | None = None, policy: Policy | None = None, queue: ReviewPolicy | None = None
) -> ReviewConfig:
    """Lease and four-eyes settings from ``settings`` (default: the process's); the categories from the
    screening ``policy``; queue targets and reasons from policy.yaml's ``review`` section (``queue``)."""
    s = settings or get_settings()
    return ReviewConfig(
        lease_seconds=s.review_lease,
        four_eyes_batch_size=s.review_four_eyes_batch,
        four_eyes_severities=s.review_four_eyes_severities,
        queue=queue if queue is not None else ReviewPolicy(),
        categories=tuple(sorted(policy.categories)) if policy is not None else (),
    )
