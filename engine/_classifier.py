"""The classifier slot of the engine.

The engine only needs something that scores a batch of texts; the ONNX implementation lives
beside this protocol once a model is trained (see the classifier issue). With no classifier the
engine still decides from rules and lexicon and says so in every verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ._verdict import ClassifierResult


class Classifier(Protocol):
    version: str

    def predict_many(self, texts: Sequence[str]) -> list[ClassifierResult]:
        """Spam/fraud probability (and bad-content category) for each text, in order."""
        ...


def load_classifier(path: Path, *, threads: int = 1) -> Classifier:
    """Load the ONNX classifier at ``path`` (onnxruntime is imported only when a model exists)."""
    from ._onnx_classifier import OnnxClassifier

    return OnnxClassifier.load(path, threads=threads)
