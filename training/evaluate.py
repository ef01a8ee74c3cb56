"""Dev-split metrics for the model card: all computed from probabilities, thresholds from policy.yaml."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from .data import Example

FPR_TARGETS = (0.005, 0.001)  # the ham false-positive targets at review / block


def _rates(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ham_fpr": fp / (fp + tn) if fp + tn else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def binary_metrics(examples: Sequence[Example], p: np.ndarray, thresholds: dict[str, float]) -> dict[str, Any]:
    """Spam/ham quality at each named threshold, overall and per source, plus ranking metrics."""
    y = np.array([e.label for e in examples])
    sources = np.array([e.source for e in examples])
    out: dict[str, Any] = {
        "n": len(y),
        "n_spam": int(y.sum()),
        "n_ham": int((y == 0).sum()),
        "roc_auc": float(roc_auc_score(y, p)),
        "average_precision": float(average_precision_score(y, p)),
        "at": {},
    }
    for name, t in thresholds.items():
        pred = p >= t
        entry: dict[str, Any] = {"threshold": t, **_rates(y, pred), "by_source": {}}
        for s in sorted(set(sources)):
            k = sources == s
            entry["by_source"][s] = _rates(y[k], pred[k])
        fbs = sources == "fbs_sms"
        entry["fbs_recall"] = float(pred[fbs].mean()) if fbs.any() else None
        out["at"][name] = entry
    ham = np.sort(p[y == 0])
    out["operating_points"] = []
    for target in FPR_TARGETS:
        # the smallest threshold whose ham FPR is ≤ target (scores ≥ t are flagged)
        allowed = int(np.floor(target * len(ham)))
        t = float(np.nextafter(ham[len(ham) - allowed - 1], np.inf)) if allowed < len(ham) else 0.0
        pred = p >= t
        out["operating_points"].append({"ham_fpr_target": target, "threshold": t, **_rates(y, pred)})
    ts = np.unique(np.quantile(p, np.linspace(0.3, 0.95, 400)))
    f1s = [_rates(y, p >= t)["f1"] for t in ts]
    i = int(np.argmax(f1s))
    out["best_f1"] = {"threshold": float(ts[i]), "f1": float(f1s[i])}
    return out


def fbs_category_metrics(
    examples: Sequence[Example],
    p: np.ndarray,
    categories: Sequence[str],
    category_p: np.ndarray,
    thresholds: dict[str, float],
) -> dict[str, Any]:
    """Per FBS category: how much is caught at each threshold, and whether the category label is right."""
    idx = [i for i, e in enumerate(examples) if e.fbs_category]
    rows: dict[str, dict[str, Any]] = defaultdict(dict)
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i in idx:
        by_cat[examples[i].fbs_category or ""].append(i)
    predicted = [categories[j] for j in np.argmax(category_p, axis=1)] if len(category_p) else []
    for fbs, members in sorted(by_cat.items()):
        row = rows[fbs]
        row["n"] = len(members)
        row["label"] = examples[members[0]].category
        for name, t in thresholds.items():
            row[f"recall_{name}"] = float(np.mean(p[members] >= t))
        row["category_accuracy"] = float(np.mean([predicted[i] == examples[i].category for i in members]))
    confusions = Counter((examples[i].category, predicted[i]) for i in idx if predicted[i] != examples[i].category)
    return {
        "by_fbs_category": dict(rows),
        "category_accuracy": float(np.mean([predicted[i] == examples[i].category for i in idx])) if idx else None,
        "top_confusions": [{"true": a, "predicted": b, "n": n} for (a, b), n in confusions.most_common(6)],
    }


def calibration(examples: Sequence[Example], p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability table (equal-width bins), expected calibration error and Brier score."""
    y = np.array([e.label for e in examples], dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table = []
    ece = 0.0
    for b in range(bins):
        k = which == b
        if not k.any():
            continue
        mean_p, rate = float(p[k].mean()), float(y[k].mean())
        ece += k.sum() / len(p) * abs(mean_p - rate)
        table.append(
            {"bin": f"{edges[b]:.1f}–{edges[b + 1]:.1f}", "n": int(k.sum()), "mean_p": mean_p, "spam_rate": rate}
        )
    return {"table": table, "ece": float(ece), "brier": float(np.mean((p - y) ** 2))}


def compare(old: dict[str, Any], new: dict[str, Any], tolerance: float) -> tuple[bool, list[dict[str, Any]]]:
    """Is ``new`` not worse than ``old`` on the same dev split? (each metric within ``tolerance``)."""
    rows: list[dict[str, Any]] = []
    ok = True
    checks: list[tuple[str, float, float, bool]] = [("roc_auc", old["roc_auc"], new["roc_auc"], True)]
    for name in old["at"]:
        if name not in new["at"]:
            continue
        o, n = old["at"][name], new["at"][name]
        checks += [
            (f"f1@{name}", o["f1"], n["f1"], True),
            (f"ham_fpr@{name}", o["ham_fpr"], n["ham_fpr"], False),
        ]
        if o.get("fbs_recall") is not None and n.get("fbs_recall") is not None:
            checks.append((f"fbs_recall@{name}", o["fbs_recall"], n["fbs_recall"], True))
    for metric, o_val, n_val, higher_better in checks:
        worse = (n_val < o_val - tolerance) if higher_better else (n_val > o_val + tolerance)
        ok = ok and not worse
        rows.append({"metric": metric, "old": o_val, "new": n_val, "delta": n_val - o_val, "worse": worse})
    return ok, rows
