"""The screening engine: normalize → lexicon → rules → classifier → fuse → Verdict.

Everything the engine reads (policy, lexicon automaton, classifier) sits in one immutable
snapshot. ``reload`` builds a complete new snapshot first and then swaps one reference, so a
screening call in flight finishes on the snapshot it started with and never sees half a reload.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from smsguard.core import InputError

from ._classifier import Classifier, load_classifier
from ._context import CUE_CHARS, WARNABLE, has_warnable, is_walk_in_job_advert, quoted_in_warning
from ._fusion import SEVERITY_WEIGHT, classifier_reason, fuse
from ._lexicon import Lexicon, Term
from ._lexicon_stage import LexiconHit, LexiconStage
from ._matcher import DEFAULT_MATCHER
from ._normalize import normalizer
from ._policy import ACTION_RANK, Policy, load_policy
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
    model_threads: int = 1
    """onnxruntime threads of the classifier (one core per worker process)."""
    policy_loader: Callable[[Path], tuple[Policy, str]] | None = None
    """How a (re)load reads ``policy_path``: ``None`` validates the screening keys only; the composition root
    (``smsguard.runtime``) passes its document loader, so every load also validates the other packages' keys."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    policy: Policy
    policy_version: str
    rules: Rules
    lexicon: LexiconStage
    classifier: Classifier | None
    versions: Versions = field(init=False)
    warnable: bool = field(init=False)
    """Whether the lexicon holds a category a warning quotes (else the warning context never runs)."""

    reasons_by_term: dict[int, tuple[tuple[object, ...], tuple[int, float]]] = field(init=False)
    """id(term) -> the fields of the reason its hits give (all but the span) and its (action rank, severity
    weight) for fusion. The snapshot's lexicon keeps every term alive, so an id is never reused while it exists."""

    def __post_init__(self) -> None:
        model = self.classifier.version if self.classifier else "none"
        object.__setattr__(
            self, "versions", Versions(policy=self.policy_version, lexicon=self.lexicon.version, model=model)
        )
        object.__setattr__(self, "reasons_by_term", {})
        object.__setattr__(self, "warnable", any(t.category in WARNABLE for t in self.lexicon.lexicon.terms))

    def _term_reason(self, term: Term) -> tuple[tuple[object, ...], tuple[int, float]]:
        """What a hit of ``term`` reports, computed on the term's first hit in this snapshot."""
        action = self.policy.category_actions(term.category).action(term.severity)
        fields = (
            f"lexicon.{term.category}",  # code
            term.category,
            term.severity,
            "lexicon",  # source
            action,
            f"sensitive term ({term.category}, {term.mode} match)",  # message
            term.term,
        )
        worst = (ACTION_RANK[action], SEVERITY_WEIGHT.get(term.severity, 0.0) if action != "pass" else 0.0)
        found = self.reasons_by_term[id(term)] = (fields, worst)
        return found

    def lexicon_reasons(self, hits: list[list[LexiconHit]]) -> tuple[list[list[Reason]], list[tuple[int, float]]]:
        """Every text's lexicon reasons and their worst (action rank, severity weight), for a whole batch at once:
        the per-hit work is ``map`` over columns (Reason takes its fields positionally), which runs in C."""
        flat = list(chain.from_iterable(hits))
        if not flat:
            return [[] for _ in hits], [(0, 0.0)] * len(hits)
        terms, starts, ends = zip(*flat, strict=True)
        known = self.reasons_by_term
        found = list(map(known.get, map(id, terms)))
        if None in found:
            found = [f or self._term_reason(t) for f, t in zip(found, terms, strict=True)]
        fields, worst = zip(*found, strict=True)
        ranks, weights = zip(*worst, strict=True)
        built = list(map(Reason, *zip(*fields, strict=True), starts, ends))
        reasons: list[list[Reason]] = []
        worsts: list[tuple[int, float]] = []
        at = 0
        for h in hits:
            n = len(h)
            if n:
                reasons.append(built[at : at + n])
                worsts.append((max(ranks[at : at + n]), max(weights[at : at + n])) if n > 1 else worst[at])
                at += n
            else:
                reasons.append([])
                worsts.append((0, 0.0))
        return reasons, worsts


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
            if config.policy_loader is not None:
                policy, policy_version = config.policy_loader(config.policy_path)
            else:
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
            exists = path is not None and path.exists()
            classifier = load_classifier(path, threads=config.model_threads) if exists else None
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
        light = self._norm.light_many(texts)
        hits = state.lexicon.scan_many(texts, folded, marked)
        scores: Sequence[ClassifierResult | None] = (
            state.classifier.predict_many(texts) if state.classifier else [None] * len(texts)
        )
        lexicon_reasons, lexicon_worst = state.lexicon_reasons(hits)
        return [
            self._verdict(state, m, f, k, li, h, w, c, content_only)
            for m, f, k, li, h, w, c in zip(
                messages, folded, marked, light, lexicon_reasons, lexicon_worst, scores, strict=True
            )
        ]

    def _verdict(
        self,
        state: _Snapshot,
        message: Message,
        folded: str,
        marked: str,
        light: str,
        lexicon_reasons: list[Reason],
        lexicon_worst: tuple[int, float],
        scored: ClassifierResult | None,
        content_only: bool,
    ) -> Verdict:
        views = TextViews(message.text, folded, light, self._norm, marked)
        kind = message.kind or state.rules.infer_kind(views)
        reasons, length, segments = state.rules.check(message, views, kind, content_only=content_only)
        policy = state.policy
        notes: list[str] = []
        warning = False
        if state.warnable and lexicon_worst[0] and CUE_CHARS.search(folded) and has_warnable(lexicon_reasons):
            quoted = quoted_in_warning(views, reasons, lexicon_reasons)
            if quoted is not None:  # an anti-fraud notice naming the scams it warns about
                lexicon_reasons, lexicon_worst, warning = quoted, _worst(quoted), True
        if scored is not None:
            r = classifier_reason(scored, policy.thresholds_for(message.tenant), policy, kind)
            if r is not None:
                if r.action != "pass":
                    r = self._classifier_in_context(r, views, reasons, lexicon_reasons, warning)
                reasons.append(r)
        else:
            notes.append(NO_MODEL_NOTE)
        decision, score = fuse(reasons, scored, lexicon_worst)  # before the lexicon's: fuse has their worst already
        if lexicon_reasons:
            reasons += lexicon_reasons
        if len(reasons) > 1:
            reasons.sort(key=_reason_order)
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

    @staticmethod
    def _classifier_in_context(
        r: Reason, views: TextViews, reasons: list[Reason], lexicon_reasons: list[Reason], warning: bool
    ) -> Reason:
        """The classifier's reason, capped to pass where the message's context shows what the corpora it learned
        from could not: a warning whose every scam phrase is quoted (``warning``; a cue word alone is not enough),
        or a walk-in job advert with nothing else against it."""
        if warning:
            why = "a warning notice that offers nothing"
        elif is_walk_in_job_advert(views, reasons + lexicon_reasons):
            why = "a job advert with a walk-in address and no private contact"
        else:
            return r
        return Reason(
            code=r.code,
            category=r.category,
            severity=r.severity,
            source=r.source,
            action="pass",
            message=f"{r.message} (capped to pass: {why})",
        )


def _worst(reasons: list[Reason]) -> tuple[int, float]:
    held = [r for r in reasons if r.action != "pass"]
    if not held:
        return (0, 0.0)
    return max(ACTION_RANK[r.action] for r in held), max(SEVERITY_WEIGHT.get(r.severity, 0.0) for r in held)


def _reason_order(r: Reason) -> tuple[bool, int, int]:
    return (r.start is None, r.start or 0, r.end or 0)
