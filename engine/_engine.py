"""The screening engine: normalize → lexicon → rules → classifier → fuse → Verdict.

Everything the engine reads (policy, lexicon automaton, classifier) sits in one immutable
snapshot. ``reload`` builds a complete new snapshot first and then swaps one reference, so a
screening call in flight finishes on the snapshot it started with and never sees half a reload.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np

from smsguard.core import InputError

from ._classifier import Classifier, load_classifier
from ._context import CUE_CHARS, WARNABLE, has_warnable, is_walk_in_job_advert, quoted_in_warning
from ._fusion import SEVERITY_WEIGHT, classifier_reason, fuse
from ._lexicon import Lexicon, Term
from ._lexicon_stage import LexiconMatches, LexiconStage
from ._matcher import DEFAULT_MATCHER
from ._normalize import normalizer
from ._policy import ACTION_RANK, Policy, load_policy
from ._rules import LIGHT_FLAGS, RULE_CODES, Rules, TextViews
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

    reason_columns: _ReasonColumns = field(init=False)
    """Per lexicon term id: the fields of the reason its hits give, filled on a term's first hit."""

    def __post_init__(self) -> None:
        model = self.classifier.version if self.classifier else "none"
        object.__setattr__(
            self, "versions", Versions(policy=self.policy_version, lexicon=self.lexicon.version, model=model)
        )
        object.__setattr__(self, "reason_columns", _ReasonColumns(self.policy, self.lexicon.terms))
        object.__setattr__(self, "warnable", any(t.category in WARNABLE for t in self.lexicon.lexicon.terms))


class _ReasonColumns:
    """What a hit of each lexicon term reports, as columns indexed by term id, so a batch's lexicon reasons are
    built straight from the stage's columns: numpy picks every hit's fields, ``map`` builds the Reasons in C
    (Reason takes its fields positionally), and each text's worst (action rank, severity weight) is a
    ``reduceat``. A term's fields are computed on its first hit (a lexicon of 100k terms is mostly never hit)."""

    def __init__(self, policy: Policy, terms: tuple[Term, ...]) -> None:
        self._policy = policy
        self._terms = terms
        n = len(terms)
        self._known = np.zeros(n, dtype=bool)
        # code, category, severity, action, message, term (source is always "lexicon")
        self._fields = [np.empty(n, dtype=object) for _ in range(6)]
        self._rank = np.zeros(n, dtype=np.int64)
        self._weight = np.zeros(n, dtype=np.float64)

    def _fill(self, tids: np.ndarray) -> None:
        code, category, severity, action_col, message, term_col = self._fields
        for t in np.unique(tids).tolist():
            term = self._terms[t]
            action = self._policy.category_actions(term.category).action(term.severity)
            code[t] = f"lexicon.{term.category}"
            category[t] = term.category
            severity[t] = term.severity
            action_col[t] = action
            message[t] = f"sensitive term ({term.category}, {term.mode} match)"
            term_col[t] = term.term
            self._rank[t] = ACTION_RANK[action]
            self._weight[t] = SEVERITY_WEIGHT.get(term.severity, 0.0) if action != "pass" else 0.0
            self._known[t] = True  # last: a concurrent batch reads a term's fields only once they are all set

    def reasons(self, found: LexiconMatches, n: int) -> tuple[list[list[Reason]], list[tuple[int, float]]]:
        """Every text's lexicon reasons and their worst (action rank, severity weight)."""
        tids = found.term_ids
        if not tids.size:
            return [[] for _ in range(n)], [(0, 0.0)] * n
        unknown = ~self._known[tids]
        if unknown.any():
            self._fill(tids[unknown])
        code, category, severity, action, message, term = (f[tids].tolist() for f in self._fields)
        built = list(
            map(
                Reason, code, category, severity, repeat("lexicon"), action, message, term,
                found.starts.tolist(), found.ends.tolist(),
            )
        )  # fmt: skip
        b = found.bounds
        reasons = [built[b[j] : b[j + 1]] for j in range(n)]
        bounds = np.asarray(b)
        hit = np.flatnonzero(bounds[1:] > bounds[:-1])  # texts with at least one hit
        firsts = bounds[hit]
        ranks = np.maximum.reduceat(self._rank[tids], firsts).tolist()
        weights = np.maximum.reduceat(self._weight[tids], firsts).tolist()
        worsts: list[tuple[int, float]] = [(0, 0.0)] * n
        for j, r, w in zip(hit.tolist(), ranks, weights, strict=True):
            worsts[j] = (r, w)
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
        flags = state.rules.flags_many(texts, folded)
        # The light view (link and spaced-number rules) only for the texts whose triggers call for it, as one batch.
        light: list[str | None] = [None] * len(texts)
        need = [j for j, f in enumerate(flags) if f & LIGHT_FLAGS]
        if need:
            for j, view in zip(need, self._norm.light_many([texts[j] for j in need]), strict=True):
                light[j] = view
        found = state.lexicon.scan_columns(texts, folded, marked)
        scores: Sequence[ClassifierResult | None] = (
            state.classifier.predict_many(texts) if state.classifier else [None] * len(texts)
        )
        lexicon_reasons, lexicon_worst = state.reason_columns.reasons(found, len(texts))
        return [
            self._verdict(state, m, f, k, li, fl, h, w, c, content_only)
            for m, f, k, li, fl, h, w, c in zip(
                messages, folded, marked, light, flags, lexicon_reasons, lexicon_worst, scores, strict=True
            )
        ]

    def _verdict(
        self,
        state: _Snapshot,
        message: Message,
        folded: str,
        marked: str,
        light: str | None,
        flags: int,
        lexicon_reasons: list[Reason],
        lexicon_worst: tuple[int, float],
        scored: ClassifierResult | None,
        content_only: bool,
    ) -> Verdict:
        views: TextViews | None = None
        if flags == 0 and message.kind is None:  # no rule trigger (most texts): only signature and length speak
            kind = state.rules.infer_kind_untriggered(folded)
            reasons, length, segments = state.rules.check_untriggered(message, kind, content_only=content_only)
        else:
            views = TextViews(message.text, folded, light, self._norm, marked, flags)
            kind = message.kind or state.rules.infer_kind(views)
            reasons, length, segments = state.rules.check(message, views, kind, content_only=content_only)
        policy = state.policy
        notes: list[str] = []
        warning = False
        if state.warnable and lexicon_worst[0] and CUE_CHARS.search(folded) and has_warnable(lexicon_reasons):
            views = views or TextViews(message.text, folded, light, self._norm, marked, flags)
            quoted = quoted_in_warning(views, reasons, lexicon_reasons)
            if quoted is not None:  # an anti-fraud notice naming the scams it warns about
                lexicon_reasons, lexicon_worst, warning = quoted, _worst(quoted), True
        if scored is not None:
            r = classifier_reason(scored, policy.thresholds_for(message.tenant), policy, kind)
            if r is not None:
                if r.action != "pass":
                    views = views or TextViews(message.text, folded, light, self._norm, marked, flags)
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
