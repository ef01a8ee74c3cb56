"""The transactional ham written for training: seeded, distinct, signed, and never a golden-set message."""

from __future__ import annotations

import json
from pathlib import Path

from smsguard.engine import normalizer
from smsguard.training import transactional
from smsguard.training.data import group_key

GOLDEN = Path(__file__).resolve().parent.parent / "data"


def _grams(text: str, n: int = 4) -> set[str]:
    folded = normalizer().fold(text)
    return {folded[i : i + n] for i in range(len(folded) - n + 1)}


def test_the_same_seed_gives_the_same_messages() -> None:
    a = transactional.generate(300, seed=7)
    assert a == transactional.generate(300, seed=7)
    assert a != transactional.generate(300, seed=8)


def test_messages_are_distinct_signed_ham() -> None:
    rows = transactional.generate(2000, seed=1)
    assert len({e.text for e in rows}) == 2000
    assert {(e.label, e.source) for e in rows} == {(0, transactional.SOURCE)}
    assert all("【" in e.text and "】" in e.text for e in rows)
    # every template is used: no kind of notice silently missing
    assert len({e.text.split("】")[0] for e in rows}) > 100


def test_no_message_copies_a_golden_one() -> None:
    """The golden sets judge the model from outside its training data: no generated message may be a near-copy
    (same group key) or share most of its character 4-grams with one."""
    golden = [json.loads(line)["text"] for f in ("golden_ham.jsonl", "golden_spam.jsonl")
              for line in (GOLDEN / f).read_text("utf-8").splitlines() if line.strip()]
    rows = transactional.generate(2000, seed=20261125)
    keys = {group_key(e.text) for e in rows}
    assert not keys & {group_key(t) for t in golden}
    grams = [_grams(e.text) for e in rows]
    for text in golden:
        g = _grams(text)
        if g:
            worst = max(len(g & h) / len(g | h) for h in grams)
            assert worst < 0.5, text
