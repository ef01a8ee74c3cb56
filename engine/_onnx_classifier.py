"""The ONNX classifier runtime: one onnxruntime session, loaded once, scoring batches.

The model file is read once into memory; its SHA-256 and training date make the version every
verdict carries (``20261125-1a2b3c4d``), so the version always names the bytes that were loaded.
A new model is picked up by ``Engine.reload("model")``, which builds a new instance and swaps it
in whole; the trainer replaces the file with an atomic rename, so a reload never reads half a file.

The graph reads ``prepare(text)`` (engine/_features.py) and the model records the features
version it was trained with; a model trained with another preparation is refused rather than
silently scored on features it never saw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from smsguard.core import ModelError

from ._features import FEATURES_VERSION, prepare
from ._verdict import ClassifierResult

INPUT = "text"
SPAM_OUTPUT = "spam_probabilities"
CATEGORY_OUTPUT = "category_probabilities"
CHUNK = 32  # rows per onnxruntime call: every row is padded to the longest message of its chunk


def _session(data: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are not the operator's business
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def model_version(data: bytes, metadata: Mapping[str, str]) -> str:
    """``<training date>-<first 8 hex of the file's SHA-256>``, e.g. ``20261125-1a2b3c4d``."""
    trained = metadata.get("trained_on", "").replace("-", "") or "undated"
    return f"{trained}-{hashlib.sha256(data).hexdigest()[:8]}"


CATEGORY_FROM = 0.5  # P(bad) from which the verdict names the category of bad content

class OnnxClassifier:
    """Spam probability and bad-content category for batches of texts."""

    def __init__(self, session: ort.InferenceSession, *, version: str, metadata: Mapping[str, str]) -> None:
        self._session = session
        self.version = version
        self.metadata = dict(metadata)
        self.categories: tuple[str, ...] = tuple(json.loads(self.metadata["categories"]))

    @classmethod
    def load(cls, path: Path, *, threads: int = 1) -> OnnxClassifier:
        """Load ``path`` with ``threads`` onnxruntime threads (one core per worker by default)."""
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ModelError(
                f"cannot read model: {e.strerror or e}", where=str(path), code="model.unreadable"
            ) from None
        return cls.from_bytes(data, where=str(path), threads=threads)

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = "<model>", threads: int = 1) -> OnnxClassifier:
        try:
            session = _session(data, threads)
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"not a loadable ONNX model: {e}", where=where, code="model.invalid") from None
        meta = session.get_modelmeta().custom_metadata_map
        features = meta.get("features_version")
        if features != FEATURES_VERSION:
            raise ModelError(
                f"model was trained with features {features!r}, this engine prepares {FEATURES_VERSION!r}: retrain it",
                where=where,
                code="model.features_mismatch",
            )
        outputs = {o.name: o.shape for o in session.get_outputs()}
        inputs = [i.name for i in session.get_inputs()]
        try:
            categories = json.loads(meta["categories"])
        except (KeyError, ValueError):
            categories = None
        if (
            inputs != [INPUT]
            or not {SPAM_OUTPUT, CATEGORY_OUTPUT} <= set(outputs)
            or not isinstance(categories, list)
            or not all(isinstance(c, str) for c in categories)
            or outputs[CATEGORY_OUTPUT][-1] != len(categories)
        ):
            raise ModelError(
                f"model has inputs {inputs} and outputs {sorted(outputs)}; expected {INPUT!r} → "
                f"{SPAM_OUTPUT!r}, {CATEGORY_OUTPUT!r} and a 'categories' metadata list, one per category column",
                where=where,
                code="model.interface",
            )
        return cls(session, version=model_version(data, meta), metadata=meta)

    def predict_prepared(self, prepared: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Spam probability [N] and category probabilities [N, K] for already prepared texts."""
        spam = np.empty(len(prepared), dtype=np.float32)
        cats = np.empty((len(prepared), len(self.categories)), dtype=np.float32)
        for start in range(0, len(prepared), CHUNK):
            chunk = np.array(prepared[start : start + CHUNK], dtype=object).reshape(-1, 1)
            s, c = self._session.run([SPAM_OUTPUT, CATEGORY_OUTPUT], {INPUT: chunk})
            spam[start : start + len(chunk)] = s[:, 1]
            cats[start : start + len(chunk)] = c
        return spam, cats

    def predict_many(self, texts: Sequence[str]) -> list[ClassifierResult]:
        """One result per text. ``category`` is the most likely kind of bad content *if* the text is bad;
        it is reported whatever the score, and the verdict only acts on it past the policy thresholds."""
        if not texts:
            return []
        spam, cats = self.predict_prepared([prepare(t) for t in texts])
        best = np.argmax(cats, axis=1)
        names = self.categories
        # A category names the kind of BAD content: for a message the model thinks is fine it would only
        # mislead (a verification code "categorised" as fraud at P(bad) = 0.0002).
        return [
            ClassifierResult(score=round(float(s), 6), category=names[j], category_score=round(float(c[j]), 6))
            if s >= CATEGORY_FROM
            else ClassifierResult(score=round(float(s), 6))
            for s, j, c in zip(spam, best, cats, strict=True)
        ]
