"""Golden sets of issue 21's families: the evasions that must be caught and the legitimate texts that must pass.

One file per family in ``tests/data/families_*.jsonl`` (written for this project, not taken from any corpus):

* ``warnings`` — anti-fraud notices from police, banks, schools and carriers that name the scams they warn
  about (must pass), and scams that merely add a warning phrase (must be caught);
* ``contacts`` — QQ / WeChat homophones and group words, mathematical and enclosed letters, phone numbers in
  spoken digit names, separated by emoji or currency signs, in enclosed digit forms (caught), and legitimate
  texts holding the same characters (两, 拐角, ❤, QQ群 without a number) that must pass;
* ``verification`` — verification messages carrying loans, marketing, opt-outs or disguised links (caught)
  and plain verification codes (pass);
* ``marketing_links`` — adverts without an opt-out behind near-miss replies or a notification label, and
  phishing links on look-alike government / ETC hosts with disguised dots (caught); compliant notices (pass);
* ``jobs`` — walk-in job adverts (pass) and job scams (caught).

Every row: ``expect`` is ``pass`` or ``caught``; a caught row names the reason ``code`` (or code prefix) that
must hold it, so it is caught for its family's reason and not for an unrelated one. Rows are screened with the
shipped policy, lexicons and model. Every reason's span indexes the original text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smsguard.engine import Engine, Message, Verdict, default_config

DATA = Path(__file__).resolve().parent.parent / "data"
FAMILIES = ("warnings", "contacts", "verification", "marketing_links", "jobs")
MIN_EACH = 8  # rows per family and expectation


def _rows(family: str) -> list[dict]:
    path = DATA / f"families_{family}.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(default_config())


def _describe(row: dict, v: Verdict) -> str:
    held = ", ".join(f"{r.code}({r.action}: {r.term!r})" for r in v.reasons if r.action != "pass")
    return f"{row['id']}: {v.decision} [{held or 'no reasons'}] {row['text']}"


def _check_spans(row: dict, v: Verdict) -> list[str]:
    text = row["text"]
    bad = []
    for r in v.reasons:
        if r.start is None:
            continue
        if not (0 <= r.start < r.end <= len(text)):
            bad.append(f"{row['id']}: {r.code} span {r.start}-{r.end} outside the text")
        elif r.source == "rule" and r.term is not None and text[r.start : r.end] != r.term:
            bad.append(f"{row['id']}: {r.code} term {r.term!r} is not the text at {r.start}-{r.end}")
    return bad


@pytest.mark.parametrize("family", FAMILIES)
def test_family_golden_set(engine: Engine, family: str) -> None:
    rows = _rows(family)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"{family}: duplicate ids"
    for expect in ("pass", "caught"):
        n = sum(r["expect"] == expect for r in rows)
        assert n >= MIN_EACH, f"{family}: {n} rows expected to {expect}, need {MIN_EACH}"
    messages = [Message(**{k: r[k] for k in ("id", "text", "kind") if k in r}) for r in rows]
    verdicts = engine.screen_many(messages)
    wrong, spans = [], []
    for row, v in zip(rows, verdicts, strict=True):
        spans += _check_spans(row, v)
        if row["expect"] == "pass":
            if v.decision != "pass":
                wrong.append("should pass: " + _describe(row, v))
        elif v.decision == "pass" or not any(r.code.startswith(row["code"]) and r.action != "pass" for r in v.reasons):
            wrong.append(f"should be caught by {row['code']}: " + _describe(row, v))
    assert not spans, "\n".join(spans)
    assert not wrong, f"{family}: {len(wrong)} of {len(rows)} wrong:\n" + "\n".join(wrong)


def test_a_quoted_warning_keeps_its_reasons_as_pass_with_exact_spans(engine: Engine) -> None:
    text = "【示例银行】温馨提示：本行不会以“征信修复”为由要求您转账，谨防诈骗。"
    v = engine.screen(Message(text=text, kind="notification"))
    assert v.decision == "pass"
    (r,) = [r for r in v.reasons if r.source == "lexicon"]
    assert r.action == "pass" and "quoted in a warning" in r.message
    assert text[r.start : r.end] == "征信修复"


def test_a_scam_with_a_warning_phrase_stays_caught_by_content(engine: Engine) -> None:
    # The same offer with and without 谨防诈骗: both blocked by the lexicon, the form rules off.
    for text in ("征信修复，内部渠道，当天见效", "谨防诈骗！征信修复，内部渠道，当天见效"):
        v = engine.screen(Message(text=text), content_only=True)
        assert v.decision == "block", text
        assert any(r.code == "lexicon.loan" and r.action == "block" for r in v.reasons)


@pytest.mark.parametrize("family", ["contacts", "marketing_links"])
def test_content_evasions_are_caught_without_form_rules(engine: Engine, family: str) -> None:
    """Contact diversion and links are content: caught with the form rules off (a valid signature and opt-out)."""
    rows = [r for r in _rows(family) if r["expect"] == "caught" and r["code"].startswith(("contact.", "link."))]
    assert rows
    verdicts = engine.screen_many([Message(text=r["text"]) for r in rows], content_only=True)
    missed = [_describe(r, v) for r, v in zip(rows, verdicts, strict=True) if v.decision == "pass"]
    assert not missed, "\n".join(missed)
