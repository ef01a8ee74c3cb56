"""``smsguard train``: corpora → split → baseline and model → ONNX → checks → model card.

Everything the card reports is measured in this run on the dev split it makes (seeded, from the
train files only). Files are written only when the model is promoted, each with an atomic
rename, the ONNX file last: an engine reloading ``models/classifier.onnx`` sees the old model
or the new one, never a half-written file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
from sklearn.metrics import roc_auc_score

from smsguard.core import ModelError, get_settings
from smsguard.engine import PROJECT_ROOT, load_policy
from smsguard.engine._features import FEATURES_VERSION, fingerprint, prepare
from smsguard.engine._onnx_classifier import OnnxClassifier

from . import card, evaluate, export, sanity, transactional
from .data import (
    DATA_DIR,
    FBS,
    MUDOU,
    REVIEWS,
    UCI,
    ZH80W,
    Example,
    file_sha256,
    group_key,
    load_corpus,
    published_copies,
    split,
)
from .model import Hyper, train, train_baseline
from .reviews import ReviewLabelSource

MODEL_FILE = "classifier.onnx"
SKLEARN_FILE = "classifier.sklearn.joblib"
CARD_FILE = "MODEL_CARD.md"
METRICS_FILE = "metrics.json"
DEFAULT_SEED = 20261125
EXIT_NOT_PROMOTED = 3


@dataclass(slots=True)
class Options:
    data_dir: Path = DATA_DIR
    out_dir: Path = PROJECT_ROOT / "models"
    policy_path: Path = PROJECT_ROOT / "policy.yaml"
    seed: int = DEFAULT_SEED
    dev_fraction: float = 0.2
    with_uci: bool = False
    reviews: ReviewLabelSource | None = None
    reviews_name: str | None = None
    limit: int | None = None  # rows per corpus (seeded sample): quick runs and tests only
    transactional: int = 2000  # messages from training/transactional.py added to train as ham
    baseline: bool = True
    tolerance: float = 0.0005
    hyper: Hyper = field(default_factory=Hyper)
    command: str = "smsguard train"


@dataclass(slots=True)
class Result:
    promoted: bool
    metrics: dict[str, Any]
    model_path: Path
    comparison: list[dict[str, Any]] | None = None
    review_effect: list[dict[str, Any]] | None = None
    """With reviews: each dev metric of the retrained model next to the same training without the review labels."""


def trained_on() -> date:
    """Today, or SOURCE_DATE_EPOCH's date: the only input that is not data, code or seed."""
    epoch = get_settings().source_date_epoch
    return datetime.fromtimestamp(epoch, UTC).date() if epoch is not None else datetime.now(UTC).date()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; these are repository files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sample(rows: list[Example], limit: int | None, seed: int) -> list[Example]:
    if limit is None or len(rows) <= limit:
        return rows
    keep = sorted(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False))
    return [rows[i] for i in keep]


def _latency(clf: OnnxClassifier, texts: Sequence[str]) -> dict[str, float]:
    """predict_many (prepare + onnxruntime) on one core: batched throughput and single-message percentiles."""
    clf.predict_many(texts[:64])
    start = time.perf_counter()
    for i in range(0, len(texts), 512):
        clf.predict_many(texts[i : i + 512])
    batched = len(texts) / (time.perf_counter() - start)
    singles = []
    for t in texts[:2000]:
        s = time.perf_counter()
        clf.predict_many([t])
        singles.append(time.perf_counter() - s)
    ms = np.array(singles) * 1000
    return {
        "batched_msgs_per_s": float(batched),
        "single_p50_ms": float(np.percentile(ms, 50)),
        "single_p99_ms": float(np.percentile(ms, 99)),
    }


def _graph_us_per_msg(session: ort.InferenceSession, prepared: Sequence[str]) -> float:
    x = np.array(prepared, dtype=object).reshape(-1, 1)
    session.run(None, {export.INPUT: x[:64]})
    start = time.perf_counter()
    for i in range(0, len(x), 64):
        session.run(None, {export.INPUT: x[i : i + 64]})
    return (time.perf_counter() - start) / len(x) * 1e6


def _session(model: Any) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


_DIGIT = re.compile(r"\d")


def _artifact_views(dev: Sequence[Example], *, published: bool) -> dict[str, list[str]]:
    """Dev texts with two corpus artefacts taken away, to see what a model leans on.

    * ``fbs_unsegmented``: FBS messages as a phone shows them, without the publisher's word spaces
      and placeholders (contacts written as masked digits, links as a URL).
    * ``digits_masked``: every digit written as ``x``, as the 80w publisher did in spam only.
    * ``fbs_published``: FBS messages exactly as published (the baseline's input; for the model, the
      placeholders and word spaces it otherwise never sees on dev).

    ``published``: start from the text as published (the baseline's input) or as the model reads it.
    """
    base = [e.as_published if published else e.text for e in dev]
    return {
        "fbs_unsegmented": ["".join(e.text.split()) if e.fbs_category else t for e, t in zip(dev, base, strict=True)],
        "digits_masked": [_DIGIT.sub("x", t) for t in base],
        "fbs_published": [e.as_published if e.fbs_category else t for e, t in zip(dev, base, strict=True)],
    }


def run(opts: Options, log: Callable[[str], None] = print) -> Result:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 2)
        return now

    t = t_start
    model_path = opts.out_dir / MODEL_FILE
    # a review retrain is judged against the current model: make sure it can be scored before training
    current = _current_model(model_path, log) if opts.reviews is not None else None
    policy, policy_version = load_policy(opts.policy_path)
    thresholds = {"review": policy.thresholds.review_at, "block": policy.thresholds.block_at}
    corpora = [ZH80W, FBS, MUDOU] + ([UCI] if opts.with_uci else [])
    examples: list[Example] = []
    data_files: dict[str, dict[str, Any]] = {}
    for name in corpora:
        rows = load_corpus(name, opts.data_dir)
        data_files[name] = {"sha256": file_sha256(opts.data_dir / name), "rows": len(rows)}
        examples += _sample(rows, opts.limit, opts.seed)
    sp = split(examples, dev_fraction=opts.dev_fraction, seed=opts.seed)
    train_ex, train_prep = list(sp.train), list(sp.train_prepared)
    log(f"data: {len(examples)} rows → train {len(sp.train)}, dev {len(sp.dev)} (seed {opts.seed})")
    # train only: the dev split stays the corpora's, so every metric below is measured on public data
    dev_keys = {group_key(e.text) for e in sp.dev}
    added_rows = published_copies(sp.train) + [
        e for e in transactional.generate(opts.transactional, seed=opts.seed) if group_key(e.text) not in dev_keys
    ]
    train_ex += added_rows
    train_prep += [prepare(e.text) for e in added_rows]
    log(f"train: +{len(added_rows)} rows (FBS as published, transactional ham written by us)")
    review_info: dict[str, Any] | None = None
    without_reviews = len(train_ex)  # the rows before the review labels: the gate's control trains on these
    if opts.reviews is not None:
        added = overlap = 0
        for text, label in opts.reviews.labels():
            if group_key(text) in dev_keys:
                overlap += 1  # would leak a dev message into training: the comparison must stay fair
                continue
            train_ex.append(Example(text, label, REVIEWS))
            train_prep.append(prepare(text))
            added += 1
        review_info = {"source": opts.reviews_name, "added": added, "dropped_dev_overlap": overlap}
        log(f"reviews: {added} labelled items added, {overlap} dropped (near-copies of dev messages)")
    t = lap("load_and_split", t)

    baseline: dict[str, Any] | None = None
    if opts.baseline:
        b = train_baseline([e.as_published for e in train_ex], [e.label for e in train_ex])
        t = lap("baseline_training", t)
        p_base = b.predict([e.as_published for e in sp.dev])
        baseline = {"metrics": evaluate.binary_metrics(sp.dev, p_base, thresholds), "artifacts": {}}
        for view, texts in _artifact_views(sp.dev, published=True).items():
            baseline["artifacts"][view] = evaluate.binary_metrics(sp.dev, b.predict(texts), thresholds)
        t = lap("baseline_evaluation", t)
        log(f"baseline: F1 {baseline['metrics']['at']['review']['f1']:.4f} at {thresholds['review']}")

    trained = train(train_ex, train_prep, opts.hyper, seed=opts.seed)
    t = lap("model_training", t)
    day = trained_on()
    metadata = {
        "features_version": FEATURES_VERSION,
        "features_fingerprint": fingerprint(),
        "trained_on": day.isoformat(),
        "categories": json.dumps(list(trained.category.classes_), ensure_ascii=False),
        "seed": str(opts.seed),
        "data": json.dumps({k: v["sha256"] for k, v in data_files.items()}),
        "reviews": json.dumps(review_info, ensure_ascii=False) if review_info else "",
    }  # no paths or clock times: the same data, seed and date give the same file
    onnx_model = export.to_onnx_model(trained.vectorizer, trained.spam, trained.category, metadata)
    onnx_bytes = onnx_model.SerializeToString()
    clf = OnnxClassifier.from_bytes(onnx_bytes, where="<new model>", threads=1)
    t = lap("onnx_export", t)

    p, cat_p = clf.predict_prepared(sp.dev_prepared)
    x_dev = trained.vectorizer.transform(sp.dev_prepared)
    sk_p, sk_cat = trained.spam.predict_proba(x_dev)[:, 1], trained.category.predict_proba(x_dev)
    parity = {
        "n": len(p),
        "max_abs_diff_spam": float(np.max(np.abs(p - sk_p))),
        "max_abs_diff_category": float(np.max(np.abs(cat_p - sk_cat))),
    }
    plain_spam, _ = export.plain_onnx_models(trained.vectorizer, trained.spam, trained.category)
    plain = _session(plain_spam)
    probe = sp.dev_prepared[:2000]
    plain_p = plain.run(None, {export.INPUT: np.array(probe, dtype=object).reshape(-1, 1)})[1][:, 1]
    graph = {
        "plain_skl2onnx_spam_only_us_per_msg": _graph_us_per_msg(plain, probe),
        "shipped_us_per_msg": _graph_us_per_msg(_session(onnx_model), probe),
        "max_abs_diff_vs_plain": float(np.max(np.abs(plain_p - p[: len(probe)]))),
    }
    new_metrics = {
        "binary": evaluate.binary_metrics(sp.dev, p, thresholds),
        "fbs": evaluate.fbs_category_metrics(sp.dev, p, clf.categories, cat_p, thresholds),
        "calibration": evaluate.calibration(sp.dev, p),
        "artifacts": {},
    }
    for view, texts in _artifact_views(sp.dev, published=False).items():
        view_p, _ = clf.predict_prepared([prepare(s) for s in texts])
        new_metrics["artifacts"][view] = evaluate.binary_metrics(sp.dev, view_p, thresholds)
    golden = _golden(clf, thresholds)
    sanity_scores = {
        name: [{"text": s, **_result(r)} for s, r in zip(texts, clf.predict_many(list(texts)), strict=True)]
        for name, texts in sanity.SETS.items()
    }
    t = lap("evaluation", t)
    speed = _latency(clf, [e.text for e in sp.dev][:20000])
    t = lap("latency", t)

    promoted, comparison, old_version, effect = True, None, None, None
    if opts.reviews is not None:
        promoted, comparison, old_version = _gate(current, sp, thresholds, new_metrics, opts.tolerance, log)
        effect = _review_effect(
            train_ex[:without_reviews], train_prep[:without_reviews], opts, sp, sk_p, thresholds, review_info, log
        )
    lap("comparison", t)
    timings["total"] = round(time.perf_counter() - t_start, 2)

    metrics: dict[str, Any] = {
        "version": None,
        "trained_on": day.isoformat(),
        "features_version": FEATURES_VERSION,
        "command": opts.command,
        "seed": opts.seed,
        "dev_fraction": opts.dev_fraction,
        "policy": {"version": policy_version, **thresholds},
        "data": data_files,
        "limit_per_corpus": opts.limit,
        "split": {
            "train": len(sp.train),
            "dev": len(sp.dev),
            "dropped_conflicts": sp.dropped_conflicts,
            "dropped_duplicates": sp.dropped_duplicates,
            "train_by_source": _count(train_ex),
            "dev_by_source": _count(sp.dev),
        },
        "reviews": review_info,
        "hyper": {**_asdict(opts.hyper), "spam_c": trained.spam_c, "validation_f1": trained.validation_f1},
        "model": {
            "n_features": len(trained.vectorizer.vocabulary_),
            "categories": list(clf.categories),
            "onnx_bytes": len(onnx_bytes),
        },
        "baseline": baseline,
        "new": new_metrics,
        "parity": parity,
        "graph": graph,
        "speed": speed,
        "sanity": sanity_scores,
        "golden": golden,
        "comparison": {"old_version": old_version, "rows": comparison, "promoted": promoted, "review_effect": effect}
        if comparison is not None
        else None,
        "timings_s": timings,
        "libraries": _libraries(),
    }
    if promoted:
        metrics["version"] = clf.version
        payload = {
            "vectorizer": trained.vectorizer,
            "spam": trained.spam,
            "category": trained.category,
            "features_version": FEATURES_VERSION,
        }
        _write_artifacts(opts.out_dir, onnx_bytes, payload, metrics)
        log(f"promoted: {model_path} (version {clf.version}) in {timings['total']:.0f} s")
    else:
        log("not promoted: the new model is worse than the current one on the dev split (see above)")
    return Result(promoted, metrics, model_path, comparison, effect)


def _write_artifacts(out: Path, onnx_bytes: bytes, payload: dict[str, Any], metrics: dict[str, Any]) -> None:
    # the sklearn twin records which ONNX file it belongs to, so the parity test cannot pair stale files
    payload["onnx_sha256"] = hashlib.sha256(onnx_bytes).hexdigest()
    buf = io.BytesIO()
    joblib.dump(payload, buf, compress=3)
    _atomic_write(out / SKLEARN_FILE, buf.getvalue())
    _atomic_write(out / METRICS_FILE, json.dumps(metrics, ensure_ascii=False, indent=1).encode() + b"\n")
    _atomic_write(out / CARD_FILE, card.render(metrics).encode())
    _atomic_write(out / MODEL_FILE, onnx_bytes)  # last: the engine only ever reloads this one


def _current_model(model_path: Path, log: Callable[[str], None]) -> OnnxClassifier | None:
    if not model_path.exists():
        log(f"no current model at {model_path}: nothing to compare against, the new one will be promoted")
        return None
    try:
        return OnnxClassifier.load(model_path, threads=1)
    except ModelError as e:
        raise ModelError(
            f"cannot score the current model to compare against ({e.message}); retrain without --with-reviews",
            where=str(model_path),
            code="model.compare",
        ) from None


def _gate(
    current: OnnxClassifier | None,
    sp: Any,
    thresholds: dict[str, float],
    new_metrics: dict[str, Any],
    tolerance: float,
    log: Callable[[str], None],
) -> tuple[bool, list[dict[str, Any]], str | None]:
    """Score the current model on the same dev split; the new one is promoted only if not worse."""
    if current is None:
        return True, [], None
    old_p, _ = current.predict_prepared(sp.dev_prepared)
    old_metrics = evaluate.binary_metrics(sp.dev, old_p, thresholds)
    ok, rows = evaluate.compare(old_metrics, new_metrics["binary"], tolerance)
    log(
        f"gate: current model {current.version} (old) vs the retrained one (new) on the dev split "
        f"({len(sp.dev)} messages), tolerance {tolerance:g}:"
    )
    for r in rows:
        flag = "  WORSE" if r["worse"] else ""
        log(f"  {r['metric']:<22} old {r['old']:.4f}  new {r['new']:.4f}  ({r['delta']:+.4f}){flag}")
    return ok, rows, current.version


def _review_effect(
    train_ex: Sequence[Example],
    train_prep: Sequence[str],
    opts: Options,
    sp: Any,
    with_p: np.ndarray,
    thresholds: dict[str, float],
    review_info: dict[str, Any] | None,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """What the review labels alone change on the dev split: the same training (data, seed, split, hyper-
    parameters) without them, scored next to the retrained model. Both are scored with scikit-learn, the same
    arithmetic on both sides (the ONNX graph matches it to ~1e-7, see the card's parity figures)."""
    added = review_info["added"] if review_info else 0
    if not added:
        log("gate: no review label reached training, so they change nothing on the dev split")
        return []
    control = train(train_ex, train_prep, opts.hyper, seed=opts.seed)
    x_dev = control.vectorizer.transform(sp.dev_prepared)
    control_p = control.spam.predict_proba(x_dev)[:, 1]
    _, rows = evaluate.compare(
        evaluate.binary_metrics(sp.dev, control_p, thresholds), evaluate.binary_metrics(sp.dev, with_p, thresholds), 0.0
    )
    flips = {name: int(np.sum((with_p >= at) != (control_p >= at))) for name, at in thresholds.items()}
    log(
        f"gate: effect of the {added} review label(s) on the dev split ({len(sp.dev)} messages; trained with "
        "vs without them, same data, seed and split):"
    )
    for r in rows:
        log(f"  {r['metric']:<22} without {r['old']:.4f}  with {r['new']:.4f}  ({r['delta']:+.4f})")
    log(
        "  dev messages that cross a threshold because of them: "
        + ", ".join(f"{n} at {name} ({thresholds[name]})" for name, n in flips.items())
    )
    return [{"metric": r["metric"], "without": r["old"], "with": r["new"], "delta": r["delta"]} for r in rows] + [
        {"metric": f"crossings@{name}", "without": None, "with": None, "delta": n} for name, n in flips.items()
    ]


GOLDEN = PROJECT_ROOT / "tests" / "data"


def _golden(clf: OnnxClassifier, thresholds: dict[str, float]) -> dict[str, Any] | None:
    """Score the engine's golden sets (hand-written SMS; never trained on) if the repository has them."""
    ham_file, spam_file = GOLDEN / "golden_ham.jsonl", GOLDEN / "golden_spam.jsonl"
    if not (ham_file.is_file() and spam_file.is_file()):
        return None
    ham = [json.loads(line) for line in ham_file.read_text("utf-8").splitlines() if line.strip()]
    spam = [json.loads(line) for line in spam_file.read_text("utf-8").splitlines() if line.strip()]
    p_ham, _ = clf.predict_prepared([prepare(r["text"]) for r in ham])
    p_spam, _ = clf.predict_prepared([prepare(r["text"]) for r in spam])

    def share(p: np.ndarray, keys: list[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        arr = np.array(keys)
        for k in sorted(set(keys)):
            sel = p[arr == k]
            out[k] = {
                "n": len(sel),
                "at_review": float(np.mean(sel >= thresholds["review"])),
                "at_block": float(np.mean(sel >= thresholds["block"])),
            }
        return out

    return {
        "roc_auc": float(roc_auc_score([0] * len(ham) + [1] * len(spam), np.concatenate([p_ham, p_spam]))),
        "ham_by_kind": share(p_ham, [r.get("kind") or "unspecified" for r in ham]),
        "spam_by_category": share(p_spam, [r.get("category") or "unspecified" for r in spam]),
    }


def _result(r: Any) -> dict[str, Any]:
    return {"score": r.score, "category": r.category, "category_score": r.category_score}


def _count(rows: Sequence[Example]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for e in rows:
        c = out.setdefault(e.source, {"ham": 0, "spam": 0})
        c["spam" if e.label else "ham"] += 1
    return out


def _asdict(h: Hyper) -> dict[str, Any]:
    return {k: getattr(h, k) for k in h.__dataclass_fields__}


def _libraries() -> dict[str, str]:
    from importlib.metadata import version

    libs = {"python": sys.version.split()[0]}
    for name in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "jieba"):
        libs[name] = version(name)
    return libs
