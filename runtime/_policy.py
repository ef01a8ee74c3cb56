"""``PolicyDocument``: policy.yaml read once, split into the typed sections of the packages that use them.

Each section belongs to the package that reads it and is validated by that package's loader; this document
only knows which sections there are, so that it alone can say a top-level key belongs to nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec

from smsguard.audit import AuditPolicy, audit_policy
from smsguard.batches import BatchesPolicy, batches_policy
from smsguard.billing import Prices, prices_policy
from smsguard.core import PolicyFile, section_keys
from smsguard.engine import RULE_CODES, Policy, screening_policy
from smsguard.review import ReviewPolicy, review_policy

POLICY_SECTIONS: tuple[tuple[str, type[msgspec.Struct], str | None, str], ...] = (
    # (document attribute, section type, the key it sits under (None: top-level keys), owner)
    ("screening", Policy, None, "smsguard.engine"),
    ("batches", BatchesPolicy, None, "smsguard.batches"),
    ("prices", Prices, "prices", "smsguard.billing"),
    ("audit", AuditPolicy, "audit", "smsguard.audit"),
    ("review", ReviewPolicy, "review", "smsguard.review"),
)
"""Every section of policy.yaml, in the order the configuration reference lists them."""

KEYS: frozenset[str] = frozenset().union(*(section_keys(kind, at=at) for _, kind, at, _ in POLICY_SECTIONS))
"""Every top-level key of policy.yaml."""


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """The whole of policy.yaml, each part typed and owned by the package that reads it."""

    screening: Policy
    """Thresholds, categories, rules, signature, length, links, kinds, contacts, tenants (``smsguard.engine``)."""
    version: str
    """The screening policy's version: ``version`` plus a hash of the whole file (the verdicts carry it)."""
    batches: BatchesPolicy
    """Caps, quiet hours and the MO reply words (``smsguard.batches``)."""
    prices: Prices
    """The price per segment by carrier, below the SQL price lists (``smsguard.billing``)."""
    audit: AuditPolicy
    """Retention and checkpoint schedule of the audit log (``smsguard.audit``)."""
    review: ReviewPolicy
    """Service-level targets, decision reasons and undo window of the review queue (``smsguard.review``)."""

    @classmethod
    def load(cls, path: Path) -> PolicyDocument:
        return cls.of(PolicyFile.read(path))

    @classmethod
    def parse(cls, raw: bytes, *, name: str = "policy.yaml") -> PolicyDocument:
        return cls.of(PolicyFile.parse(raw, name=name))

    @classmethod
    def of(cls, file: PolicyFile) -> PolicyDocument:
        """Every section of ``file``, validated; a ``PolicyError`` names the first bad key path."""
        file.reject_unknown(KEYS)
        screening, version = screening_policy(file, known_rules=frozenset(RULE_CODES))
        return cls(
            screening=screening,
            version=version,
            batches=batches_policy(file),
            prices=prices_policy(file),
            audit=audit_policy(file),
            review=review_policy(file, categories=screening.categories),
        )
