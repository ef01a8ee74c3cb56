"""policy.yaml's screening keys (thresholds, categories, rules, signature, length, links, kinds, contacts,
tenants), validated into typed structs.

Unknown keys are errors (a typo must not silently disable a rule), and every error names the key path, e.g.
``policy.yaml: $.tenants.acme.thresholds.block_at``. The file's other keys belong to the packages that use
them (caps and quiet hours: ``batches``, prices: ``billing``, retention: ``audit``, the queue: ``review``);
``smsguard.runtime.PolicyDocument`` reads the file once and validates all of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from smsguard.core import PolicyFile, PolicySection

from ._lexicon import Severity

Action = Literal["pass", "review", "block"]
Kind = Literal["verification", "notification", "marketing"]
ACTION_RANK: dict[str, int] = {"pass": 0, "review": 1, "block": 2}


class _Strict(PolicySection):
    pass


class Thresholds(_Strict):
    """Classifier probability at or above which a message goes to review, or is blocked."""

    review_at: float = 0.5
    block_at: float = 0.9


class SeverityActions(_Strict):
    """What a lexicon hit of each severity does, for one category."""

    low: Action = "review"
    medium: Action = "review"
    high: Action = "block"

    def action(self, severity: str) -> Action:
        return getattr(self, severity)


class RuleSetting(_Strict):
    """Severity and action of one rule code; ``by_kind`` overrides the action per message kind."""

    severity: Severity
    action: Action
    category: str = "form"
    enabled: bool = True
    by_kind: dict[Kind, Action] = {}

    def action_for(self, kind: str) -> Action:
        return self.by_kind.get(kind, self.action)  # type: ignore[call-overload]


class SignatureRules(_Strict):
    min_len: int = 2
    max_len: int = 12


class LengthRules(_Strict):
    """UCS-2 (Chinese) segment sizes; GSM-7 sizes apply to pure-ASCII messages."""

    single: int = 70
    segment: int = 67
    gsm7_single: int = 160
    gsm7_segment: int = 153
    max: int = 500


class LinkRules(_Strict):
    allowed_domains: list[str] = []
    shorteners: list[str] = []
    tlds: list[str] = []


class VerificationRules(_Strict):
    code_min: int = 4
    code_max: int = 6


class KindCues(_Strict):
    """Words (matched on the folded text) that tell a message's kind when the sender gave none."""

    verification: list[str] = []
    marketing: list[str] = []


class ContactRules(_Strict):
    """Cue words that, followed by an id, divert the reader to a private WeChat / QQ contact."""

    wechat_cues: list[str] = []
    qq_cues: list[str] = []


class TenantPolicy(_Strict):
    signatures: list[str] = []
    allowed_domains: list[str] = []
    registered_numbers: list[str] = []
    thresholds: Thresholds | None = None


class Policy(_Strict):
    """The screening keys of policy.yaml: what the engine enforces on a message's text and form."""

    version: str
    thresholds: Thresholds = Thresholds()
    classifier_caps: dict[str, dict[Kind, Action]] = {}
    """Highest action the classifier may take for a category, by message kind (e.g. ad → pass when the
    message is declared marketing: the rules already demand its signature and opt-out)."""
    categories: dict[str, SeverityActions] = {}
    default_category: SeverityActions = SeverityActions()
    rules: dict[str, RuleSetting] = {}
    signature: SignatureRules = SignatureRules()
    length: LengthRules = LengthRules()
    links: LinkRules = LinkRules()
    verification: VerificationRules = VerificationRules()
    kinds: KindCues = KindCues()
    optout_patterns: list[str] = []
    contacts: ContactRules = ContactRules()
    tenants: dict[str, TenantPolicy] = {}

    def category_actions(self, category: str) -> SeverityActions:
        return self.categories.get(category, self.default_category)

    def thresholds_for(self, tenant: str | None) -> Thresholds:
        override = self.tenants.get(tenant) if tenant else None
        return override.thresholds if override and override.thresholds else self.thresholds

    def tenant(self, tenant: str | None) -> TenantPolicy:
        return self.tenants.get(tenant, _NO_TENANT) if tenant else _NO_TENANT


_NO_TENANT = TenantPolicy()


def screening_policy(file: PolicyFile, *, known_rules: frozenset[str] = frozenset()) -> tuple[Policy, str]:
    """The screening keys of ``file``, validated, and the version the verdicts carry: ``version`` plus a hash of
    the whole file (so an edit anywhere in it is a new version). The other packages' keys are not read here."""
    policy = file.section(Policy)
    _check(policy, file, known_rules)
    return policy, f"{policy.version}+{file.digest()}"


def load_policy(path: Path, *, known_rules: frozenset[str] = frozenset()) -> tuple[Policy, str]:
    """Read policy.yaml and validate its screening keys; returns the policy and its version."""
    return screening_policy(PolicyFile.read(path), known_rules=known_rules)


def parse_policy(
    raw: bytes, *, name: str = "policy.yaml", known_rules: frozenset[str] = frozenset()
) -> tuple[Policy, str]:
    return screening_policy(PolicyFile.parse(raw, name=name), known_rules=known_rules)


def _check(policy: Policy, file: PolicyFile, known_rules: frozenset[str]) -> None:
    fail = file.fail

    def check_thresholds(t: Thresholds, path: str) -> None:
        for key in ("review_at", "block_at"):
            if not 0.0 <= getattr(t, key) <= 1.0:
                fail(f"{path}.{key}", "must be between 0 and 1")
        if t.review_at > t.block_at:
            fail(f"{path}.review_at", f"review_at ({t.review_at}) must not exceed block_at ({t.block_at})")

    check_thresholds(policy.thresholds, "thresholds")
    for tenant, tp in policy.tenants.items():
        if tp.thresholds:
            check_thresholds(tp.thresholds, f"tenants.{tenant}.thresholds")
        for i, number in enumerate(tp.registered_numbers):
            if not number.isdigit():
                fail(f"tenants.{tenant}.registered_numbers[{i}]", f"{number!r} must be digits only")
    if known_rules:
        for code in policy.rules:
            if code not in known_rules:
                fail(f"rules.{code}", f"unknown rule code; known codes: {', '.join(sorted(known_rules))}")
        missing = sorted(known_rules - set(policy.rules))
        if missing:
            fail("rules", f"missing settings for rule codes: {', '.join(missing)}")
    s = policy.signature
    if not 1 <= s.min_len <= s.max_len:
        fail("signature.min_len", "must be at least 1 and not above max_len")
    ln = policy.length
    if not 0 < ln.segment <= ln.single <= ln.max or not 0 < ln.gsm7_segment <= ln.gsm7_single:
        fail("length", "need 0 < segment <= single <= max and 0 < gsm7_segment <= gsm7_single")
    v = policy.verification
    if not 1 <= v.code_min <= v.code_max:
        fail("verification.code_min", "must be at least 1 and not above code_max")
    for i, pattern in enumerate(policy.optout_patterns):
        try:
            re.compile(pattern)
        except re.error as e:
            fail(f"optout_patterns[{i}]", f"invalid regular expression: {e}")
