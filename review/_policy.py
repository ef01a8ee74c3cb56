"""policy.yaml ``review``: the human review queue's service-level targets, decision reasons and undo window."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

import msgspec

from smsguard.core import PolicyFile, PolicySection

Severity = Literal["low", "medium", "high"]


class ReviewReason(PolicySection):
    """A canned decision reason of the reviewer workbench: ``label`` (Chinese) is what the customer reads in the
    console, the API and webhooks; ``categories`` limits where it is offered (empty: every category)."""

    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    categories: list[str] = []


class ReviewPolicy(PolicySection):
    """The human review queue: how long an item may wait per severity (its service-level target, minutes), the
    share of it after which the item is shown as near the target, and the maintained decision reasons."""

    sla_minutes: dict[Severity, Annotated[float, msgspec.Meta(gt=0)]] = msgspec.field(
        default_factory=lambda: {"high": 15.0, "medium": 60.0, "low": 240.0})
    near_sla: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    reasons: list[ReviewReason] = []
    undo_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 0.0
    """Grace window after a final decision: its reviewer may undo it; only after it is the decision released
    (the source's handler, the training label, webhooks). 0 (the default) releases at once."""

    def sla_seconds(self, severity: str) -> float:
        """Seconds an item of ``severity`` may wait; a severity without a target gets the most lenient one."""
        minutes = self.sla_minutes.get(severity)  # type: ignore[call-overload]
        return 60.0 * (minutes if minutes is not None else max(self.sla_minutes.values(), default=240.0))


def review_policy(file: PolicyFile, *, categories: Collection[str]) -> ReviewPolicy:
    """``review`` of ``file``, validated against the screening policy's ``categories`` (a reason may only be
    offered for a category that exists); errors name the key path, other keys are not read."""
    policy = file.section(ReviewPolicy, at="review")
    codes: set[str] = set()
    for i, reason in enumerate(policy.reasons):
        if reason.code in codes:
            file.fail(f"review.reasons[{i}].code", f"{reason.code!r} is listed twice")
        codes.add(reason.code)
        for j, category in enumerate(reason.categories):
            if category not in categories:
                file.fail(f"review.reasons[{i}].categories[{j}]", f"unknown category {category!r}")
    return policy
