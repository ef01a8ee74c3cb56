"""Verdict fusion: one decision and one score from rule, lexicon and classifier evidence.

The decision is the strictest action among the reasons. The classifier adds a reason of its own
when its probability reaches the policy's ``review_at`` or ``block_at``; ``classifier_caps`` in the
policy can lower that action for a category and message kind (an advert is spam in the training
corpora but legitimate bulk SMS when sent as declared marketing). The score is a risk in
0..1: the classifier probability when a model ran, raised to the severity weight of the worst
reason (so a blocked message never shows a low score).
"""

from __future__ import annotations

from ._policy import ACTION_RANK, Policy, Thresholds
from ._verdict import ClassifierResult, Decision, Reason

SEVERITY_WEIGHT = {"low": 0.35, "medium": 0.65, "high": 0.95}
_DECISIONS: tuple[Decision, ...] = ("pass", "review", "block")


def classifier_reason(result: ClassifierResult, thresholds: Thresholds, policy: Policy, kind: str) -> Reason | None:
    if result.score >= thresholds.block_at:
        action: Decision = "block"
        severity = "high"
    elif result.score >= thresholds.review_at:
        action, severity = "review", "medium"
    else:
        return None
    category = result.category or "spam"
    cap = policy.classifier_caps.get(category, {}).get(kind)  # type: ignore[call-overload]
    if cap is not None and ACTION_RANK[cap] < ACTION_RANK[action]:
        action = cap
    return Reason(
        code="classifier.score",
        category=category,
        severity=severity,
        source="classifier",
        action=action,
        message=f"classifier probability {result.score:.3f} for {category}"
        + (f" (capped to {action} for {kind} messages)" if cap is not None and action == cap else ""),
    )


def fuse(
    reasons: list[Reason], classifier: ClassifierResult | None, worst: tuple[int, float] = (0, 0.0)
) -> tuple[Decision, float]:
    """``worst``: the highest action rank and the highest severity weight of non-pass reasons fused elsewhere
    (the engine computes them for a batch's lexicon reasons at once)."""
    rank, weight = worst
    for r in reasons:  # one pass: this runs once per message
        action = r.action
        if action != "pass":
            rank = max(rank, ACTION_RANK[action])
            w = SEVERITY_WEIGHT.get(r.severity, 0.0)
            if w > weight:
                weight = w
    if classifier is not None and classifier.score > weight:
        return _DECISIONS[rank], round(classifier.score, 4)
    return _DECISIONS[rank], weight  # a weight has four decimals at most: rounding it changes nothing
