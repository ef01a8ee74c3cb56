"""The screening engine: normalize → lexicon → rules → classifier → fuse → Verdict.

Everything the engine reads (policy, lexicon automaton, classifier) sits in one immutable
snapshot. ``reload`` builds a complete new snapshot first and then swaps one reference, so a
screening call in flight finishes on the snapshot it started with and never sees half a reload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._classifier import Classifier, load_classifier
from ._errors import InputError
from ._fusion import classifier_reason, fuse
from ._lexicon import Lexicon
from ._lexicon_stage import LexiconHit, LexiconStage
from ._matcher import DEFAULT_MATCHER
from ._normalize import normalizer
from ._policy import Policy, load_policy
from ._rules import RULE_CODES, Rules, TextViews
from ._verdict import ClassifierResult, Message, Reason, Verdict, Versions

NO_MODEL_NOTE = "no classifier model loaded: decided by rules and lexicon only"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Where the engine's inputs live."""

    policy_path: Path
    """policy.yaml to enforce."""
    lexicon_dirs: tuple[Path, ...]
    """Directories of lexicon TSV files; later ones add to earlier ones."""
    model_path: Path | None = None
    """ONNX classifier; ``None`` or a missing file runs the engine without a model."""
    matcher: str = DEFAULT_MATCHER
    """Aho-Corasick backend: ``ahocorasick_rs`` (default) or ``pyahocorasick``."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    policy: Policy
    policy_version: str
    rules: Rules
    lexicon: LexiconStage
    classifier: Classifier | None
    versions: Versions = field(init=False)

    def __post_init__(self) -> None:
        model = self.classifier.version if self.classifier else "none"
        object.__setattr__(
            self, "versions", Versions(policy=self.policy_version, lexicon=self.lexicon.version, model=model)
        )


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._norm = normalizer()
        self._state = self._build(config)

    # -- loading -------------------------------------------------------------------------------
    def _build(
        self, config: EngineConfig, previous: _Snapshot | None = None, *, what: frozenset[str] | None = None
    ) -> _Snapshot:
        what = what or frozenset({"policy", "lexicon", "model"})
        if previous is None or "policy" in what:
            policy, policy_version = load_policy(config.policy_path, known_rules=frozenset(RULE_CODES))
            rules = Rules(policy, self._norm)
        else:
            policy, policy_version, rules = previous.policy, previous.policy_version, previous.rules
        if previous is None or "lexicon" in what:
            lexicon = LexiconStage(Lexicon.load(*config.lexicon_dirs), matcher=config.matcher, norm=self._norm)
        else:
            lexicon = previous.lexicon
        if previous is None or "model" in what:
            path = config.model_path
            classifier = load_classifier(path) if path is not None and path.exists() else None
        else:
            classifier = previous.classifier
        return _Snapshot(policy, policy_version, rules, lexicon, classifier)

    def reload(self, *what: str) -> Versions:
        """Rebuild policy, lexicon and/or model (all by default) and swap them in atomically."""
        unknown = set(what) - {"policy", "lexicon", "model"}
        if unknown:
            raise InputError(f"cannot reload {sorted(unknown)}; choose policy, lexicon or model", code="reload.unknown")
        self._state = self._build(self.config, self._state, what=frozenset(what) or None)
        return self._state.versions

    @property
    def versions(self) -> Versions:
        return self._state.versions

    @property
    def policy(self) -> Policy:
        return self._state.policy

    @property
    def lexicon(self) -> LexiconStage:
        return self._state.lexicon

    # -- screening -----------------------------------------------------------------------------
    def screen(self, message: Message, *, content_only: bool = False) -> Verdict:
        return self.screen_many([message], content_only=content_only)[0]

    def screen_many(self, messages: Sequence[Message], *, content_only: bool = False) -> list[Verdict]:
        """Screen a batch; the classifier (when loaded) runs once for the whole batch."""
        state = self._state
        for i, m in enumerate(messages):
            if not m.text.strip():
                where = "$.text" if len(messages) == 1 else f"$[{i}].text"
                raise InputError("text must not be empty", where=where, code="input.empty_text")
        texts = [m.text for m in messages]
        folded, marked = self._norm.fold_many_marked(texts)  # marked: offset maps without a second pass
        hits = state.lexicon.scan_many(texts, folded, marked)
        scores: Sequence[ClassifierResult | None] = (
            state.classifier.predict_many(texts) if state.classifier else [None] * len(texts)
        )
        return [
            self._verdict(state, m, f, k, h, c, content_only)
            for m, f, k, h, c in zip(messages, folded, marked, hits, scores, strict=True)
        ]

    def _verdict(
        self,
        state: _Snapshot,
        message: Message,
        folded: str,
        marked: str,
        hits: list[LexiconHit],
        scored: ClassifierResult | None,
        content_only: bool,
    ) -> Verdict:
        views = TextViews(message.text, folded, self._norm.light(message.text), self._norm, marked)
        kind = message.kind or state.rules.infer_kind(views)
        reasons, length, segments = state.rules.check(message, views, kind, content_only=content_only)
        policy = state.policy
        for hit in hits:
            t = hit.term
            reasons.append(
                Reason(
                    code=f"lexicon.{t.category}",
                    category=t.category,
                    severity=t.severity,
                    source="lexicon",
                    action=policy.category_actions(t.category).action(t.severity),
                    message=f"sensitive term ({t.category}, {t.mode} match)",
                    term=t.term,
                    start=hit.start,
                    end=hit.end,
                )
            )
        notes: list[str] = []
        if scored is not None:
            r = classifier_reason(scored, policy.thresholds_for(message.tenant), policy, kind)
            if r is not None:
                reasons.append(r)
        else:
            notes.append(NO_MODEL_NOTE)
        reasons.sort(key=lambda r: (r.start is None, r.start or 0, r.end or 0))
        decision, score = fuse(reasons, scored)
        return Verdict(
            id=message.id,
            decision=decision,
            score=score,
            kind=kind,
            kind_inferred=message.kind is None,
            length=length,
            segments=segments,
            reasons=reasons,
            versions=state.versions,
            classifier=scored,
            notes=notes,
        )
