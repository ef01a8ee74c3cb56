"""Golden sets: the shipped policy and lexicons against hand-written legitimate and bad SMS.

``tests/data/golden_ham.jsonl`` holds complete, compliant messages (signature, opt-out on marketing,
one code on verification) chosen to be hard: innocent words that contain sensitive substrings,
numbers that are not phones, allowed links, traditional / full-width / English / emoji text. Every
one must pass. ``tests/data/golden_spam.jsonl`` holds bad messages, many disguised; each has the
``category`` it belongs to. At least 98 % must not pass, and every one outside the ``form`` category
must be caught by its content alone (as a spammer with a valid signature and opt-out would be).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from smsguard.engine import Engine, Message, Verdict, default_config

DATA = Path(__file__).resolve().parent.parent / "data"
HAM_FILE = DATA / "golden_ham.jsonl"
SPAM_FILE = DATA / "golden_spam.jsonl"
MIN_LINES = 200
SPAM_CATCH_RATE = 0.98
KINDS = {"verification", "notification", "marketing"}
SPAM_CATEGORIES = {
    "gambling", "fraud", "loan", "porn", "drugs", "illegal", "weapons", "abuse", "contact", "link", "form",
}  # fmt: skip
MESSAGE_FIELDS = ("id", "text", "kind", "signature", "tenant")

# id -> the engine bug that makes the message come out wrong today.


def _load(path: Path) -> list[dict]:
    rows = []
    for lineno, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            row["_line"] = lineno
            rows.append(row)
    return rows


def _message(row: dict) -> Message:
    return Message(**{k: row[k] for k in MESSAGE_FIELDS if k in row})


def _describe(row: dict, verdict: Verdict) -> str:
    reasons = ", ".join(
        f"{r.code}({r.action}{': ' + repr(r.term) if r.term else ''})" for r in verdict.reasons if r.action != "pass"
    )
    return f"{row['id']} (line {row['_line']}): {verdict.decision} [{reasons or 'no reasons'}] {row['text'][:60]!r}"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(default_config())


@pytest.fixture(scope="module")
def ham() -> list[dict]:
    return _load(HAM_FILE)


@pytest.fixture(scope="module")
def spam() -> list[dict]:
    return _load(SPAM_FILE)


@pytest.mark.parametrize("path", [HAM_FILE, SPAM_FILE], ids=lambda p: p.name)
def test_golden_file_shape(path: Path) -> None:
    rows = _load(path)
    assert len(rows) >= MIN_LINES, f"{path.name}: {len(rows)} messages, need at least {MIN_LINES}"
    dupes = [i for i, n in Counter(r.get("id") for r in rows).items() if n > 1]
    assert not dupes, f"{path.name}: duplicate ids {dupes}"
    is_spam = path == SPAM_FILE
    for row in rows:
        where = f"{path.name}:{row['_line']}"
        assert isinstance(row.get("id"), str) and row["id"], f"{where}: missing id"
        assert isinstance(row.get("text"), str) and row["text"].strip(), f"{where}: missing text"
        assert row.get("kind") is None or row["kind"] in KINDS, f"{where}: bad kind {row.get('kind')!r}"
        if is_spam:
            assert row.get("category") in SPAM_CATEGORIES, f"{where}: bad category {row.get('category')!r}"
        else:
            assert row.get("kind") in KINDS, f"{where}: ham lines must say their kind"
        _message(row)  # the engine's input type accepts it


def test_every_ham_message_passes(engine: Engine, ham: list[dict]) -> None:
    rows = ham
    verdicts = engine.screen_many([_message(r) for r in rows])
    wrong = [_describe(r, v) for r, v in zip(rows, verdicts, strict=True) if v.decision != "pass"]
    assert not wrong, f"{len(wrong)} legitimate messages did not pass:\n" + "\n".join(wrong)


def test_spam_is_caught(engine: Engine, spam: list[dict]) -> None:
    rows = spam
    verdicts = engine.screen_many([_message(r) for r in rows])
    passed = [_describe(r, v) for r, v in zip(rows, verdicts, strict=True) if v.decision == "pass"]
    rate = 1 - len(passed) / len(rows)
    assert rate >= SPAM_CATCH_RATE, (
        f"only {rate:.1%} of {len(rows)} bad messages were caught (need {SPAM_CATCH_RATE:.0%}); these passed:\n"
        + "\n".join(passed)
    )


def test_spam_content_is_caught_without_form_rules(engine: Engine, spam: list[dict]) -> None:
    """A spammer with a registered signature and an opt-out line must still be caught by content:
    screened with the form rules off, each message is stopped for its own category."""
    rows = [r for r in spam if r["category"] != "form"]
    verdicts = engine.screen_many([_message(r) for r in rows], content_only=True)
    missed = [
        f"{_describe(r, v)} expected category {r['category']!r}"
        for r, v in zip(rows, verdicts, strict=True)
        if v.decision == "pass" or r["category"] not in {x.category for x in v.reasons if x.action != "pass"}
    ]
    rate = 1 - len(missed) / len(rows)
    assert rate >= SPAM_CATCH_RATE, (
        f"only {rate:.1%} of {len(rows)} bad messages were caught by content for their category; missed:\n"
        + "\n".join(missed)
    )
