"""jieba tokenization, loaded on first use (building jieba's prefix dictionary takes ~1 s)."""

from __future__ import annotations

import logging
import threading

import jieba


class Tokenizer:
    """Token boundaries of original texts, for ``word``-mode lexicon terms."""

    def __init__(self) -> None:
        self._jieba: jieba.Tokenizer | None = None
        self._lock = threading.Lock()

    def _get(self) -> jieba.Tokenizer:
        if self._jieba is None:
            with self._lock:
                if self._jieba is None:
                    jieba.setLogLevel(logging.WARNING)
                    tok = jieba.Tokenizer()
                    tok.initialize()
                    self._jieba = tok
        return self._jieba

    def tokens(self, text: str) -> list[str]:
        return self._get().lcut(text, HMM=False)

    def boundaries(self, text: str) -> set[int]:
        """Every index where a token starts or ends, 0 and len(text) included."""
        bounds = {0}
        pos = 0
        for token in self._get().cut(text, HMM=False):
            pos += len(token)
            bounds.add(pos)
        return bounds
