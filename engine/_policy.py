"""policy.yaml: the compliance policy, validated into typed structs.

Unknown keys are errors (a typo must not silently disable a rule), and every error names the key
path, e.g. ``policy.yaml: $.tenants.acme.thresholds.block_at``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from smsguard.core import PolicyError

from ._lexicon import Severity

Action = Literal["pass", "review", "block"]
Kind = Literal["verification", "notification", "marketing"]
ACTION_RANK: dict[str, int] = {"pass": 0, "review": 1, "block": 2}


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
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


class AuditPolicy(_Strict):
    """The audit log: events older than ``retention_days`` may be archived (never silently deleted); the
    service signs a checkpoint of the chain head every ``checkpoint_minutes`` or every ``checkpoint_events`` new
    events, whichever comes first (and once at start-up)."""

    retention_days: Annotated[int, msgspec.Meta(ge=1)] = 365
    checkpoint_minutes: Annotated[int, msgspec.Meta(ge=1)] = 60
    checkpoint_events: Annotated[int, msgspec.Meta(ge=1)] = 100_000


class ReviewReason(_Strict):
    """A canned decision reason of the reviewer workbench: ``label`` (Chinese) is what the customer reads in the
    console, the API and webhooks; ``categories`` limits where it is offered (empty: every category)."""

    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    categories: list[str] = []


class ReviewPolicy(_Strict):
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


class FrequencyCap(_Strict):
    """At most ``max`` messages per number, signature and kind in each fixed window of ``per`` seconds."""

    per: int
    max: int


class CapRules(_Strict):
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


class QuietHours(_Strict):
    """Local hours in which ``kinds`` are not released; their recipients are deferred to ``end``, not dropped."""

    start: str = "20:00"
    end: str = "08:00"
    timezone: str = "Asia/Shanghai"
    kinds: list[Kind] = msgspec.field(default_factory=lambda: ["marketing"])


class Prices(_Strict):
    """Price of one segment per carrier, in ``currency`` (the cost estimate is segments × price)."""

    currency: str = "CNY"
    mobile: float = 0.045
    unicom: float = 0.045
    telecom: float = 0.045
    broadnet: float = 0.045
    virtual: float = 0.05
    other: float = 0.05

    def for_carrier(self, carrier: str) -> float:
        return getattr(self, carrier) if carrier in _CARRIERS else self.other


_CARRIERS = frozenset({"mobile", "unicom", "telecom", "broadnet", "virtual", "other"})


class TenantPolicy(_Strict):
    signatures: list[str] = []
    allowed_domains: list[str] = []
    registered_numbers: list[str] = []
    thresholds: Thresholds | None = None


class Policy(_Strict):
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
    optout_keywords: list[str] = msgspec.field(
        default_factory=lambda: ["td", "t", "n", "r", "退订", "取消", "stop", "unsubscribe", "退", "qx"]
    )
    """MO replies (the whole reply, case, spaces and punctuation ignored) that opt a number out."""
    optin_keywords: list[str] = msgspec.field(default_factory=lambda: ["start", "订阅", "恢复"])
    """MO replies that opt a number back in."""
    complaint_keywords: list[str] = msgspec.field(default_factory=lambda: ["投诉", "举报", "12321"])
    """Words anywhere in an MO reply that record a complaint (and opt the number out tenant-wide)."""
    caps: CapRules = CapRules()
    quiet_hours: QuietHours = QuietHours()
    prices: Prices = Prices()
    tenants: dict[str, TenantPolicy] = {}
    audit: AuditPolicy = AuditPolicy()
    review: ReviewPolicy = ReviewPolicy()

    def category_actions(self, category: str) -> SeverityActions:
        return self.categories.get(category, self.default_category)

    def thresholds_for(self, tenant: str | None) -> Thresholds:
        override = self.tenants.get(tenant) if tenant else None
        return override.thresholds if override and override.thresholds else self.thresholds

    def tenant(self, tenant: str | None) -> TenantPolicy:
        return self.tenants.get(tenant, _NO_TENANT) if tenant else _NO_TENANT


_NO_TENANT = TenantPolicy()
_AT_PATH = re.compile(r"^(.*) - at `(key` in `)?(\$[^`]*)`$")
_PATH_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|(\[\.\.\.\])")


def load_policy(path: Path, *, known_rules: frozenset[str] = frozenset()) -> tuple[Policy, str]:
    """Read and validate policy.yaml; returns the policy and a content hash for the verdicts."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PolicyError(f"cannot read policy file: {e.strerror}", where=str(path), code="policy.unreadable") from None
    return parse_policy(raw, name=path.name, known_rules=known_rules)


def parse_policy(
    raw: bytes, *, name: str = "policy.yaml", known_rules: frozenset[str] = frozenset()
) -> tuple[Policy, str]:
    try:
        policy = msgspec.yaml.decode(raw, type=Policy)
    except msgspec.ValidationError as e:
        m = _AT_PATH.match(str(e))
        message, path = (m.group(1), m.group(3)) if m else (str(e), "$")
        if m and m.group(2):
            message += " (a key)"
        if "[...]" in path:
            path = _name_keys(raw, path, str(e))
        raise PolicyError(message, where=f"{name}: {path}", code="policy.schema") from None
    except msgspec.DecodeError as e:
        raise PolicyError(f"not valid YAML: {e}", where=name, code="policy.syntax") from None
    _check(policy, name, known_rules)
    return policy, f"{policy.version}+{hashlib.sha256(raw).hexdigest()[:8]}"


def _name_keys(raw: bytes, path: str, error: str) -> str:
    """msgspec writes every mapping key as ``[...]`` (``$.tenants[...].thresholds``); name the key.

    The failing entry is the first one that, kept alone in its mapping, reproduces the same error.
    Only runs on the error path, so trying each entry in turn costs nothing in normal use.
    """
    data = msgspec.yaml.decode(raw)
    node: object = data
    out = "$"
    for m in _PATH_SEGMENT.finditer(path):
        field, index, anykey = m.groups()
        if field is not None and isinstance(node, dict):
            out, node = f"{out}.{field}", node.get(field)
        elif index is not None and isinstance(node, list) and int(index) < len(node):
            out, node = f"{out}[{index}]", node[int(index)]
        elif anykey is not None and isinstance(node, dict):
            entries = list(node.items())
            culprit = None
            try:
                for key, value in entries:
                    node.clear()
                    node[key] = value
                    try:
                        msgspec.convert(data, Policy)
                    except msgspec.ValidationError as e:
                        if str(e) == error:
                            culprit = key
                            break
            finally:
                node.clear()
                node.update(entries)
            if culprit is None:
                return out + path[m.start() :]
            out, node = f"{out}.{culprit}", node[culprit]
        else:
            return out + path[m.start() :]
    return out


def _check(policy: Policy, name: str, known_rules: frozenset[str]) -> None:
    def fail(path: str, message: str) -> None:
        raise PolicyError(message, where=f"{name}: $.{path}", code="policy.value")

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
    for kind in ("verification", "notification", "marketing"):
        for i, cap in enumerate(policy.caps.for_kind(kind)):
            if cap.per < 1 or cap.max < 1:
                fail(f"caps.{kind}[{i}]", "per (seconds) and max must both be at least 1")
    q = policy.quiet_hours
    for key in ("start", "end"):
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", getattr(q, key)):
            fail(f"quiet_hours.{key}", f"{getattr(q, key)!r} must be HH:MM (24 h)")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(q.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        fail("quiet_hours.timezone", f"unknown time zone {q.timezone!r}")
    for key in ("mobile", "unicom", "telecom", "broadnet", "virtual", "other"):
        if getattr(policy.prices, key) < 0:
            fail(f"prices.{key}", "must not be negative")
    codes: set[str] = set()
    for i, reason in enumerate(policy.review.reasons):
        if reason.code in codes:
            fail(f"review.reasons[{i}].code", f"{reason.code!r} is listed twice")
        codes.add(reason.code)
        for j, category in enumerate(reason.categories):
            if category not in policy.categories:
                fail(f"review.reasons[{i}].categories[{j}]", f"unknown category {category!r}")
    for i, pattern in enumerate(policy.optout_patterns):
        try:
            re.compile(pattern)
        except re.error as e:
            fail(f"optout_patterns[{i}]", f"invalid regular expression: {e}")
