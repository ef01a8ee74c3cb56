"""Reviewer labels for retraining: the (text, label) protocol and its JSON-lines implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsguard.core import InputError
from smsguard.training.reviews import JsonlReviewSource, ReviewLabelSource


def test_jsonl_labels_and_decisions(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    path.write_text(
        '{"text": "全场5折，回T退订", "label": 1}\n'
        "\n"
        '{"text": "您的验证码是1234", "decision": "approve", "reviewer": "r1"}\n'
        '{"text": "代开发票", "decision": "REJECT"}\n',
        encoding="utf-8",
    )
    source = JsonlReviewSource(path)
    assert isinstance(source, ReviewLabelSource)
    assert list(source.labels()) == [("全场5折，回T退订", 1), ("您的验证码是1234", 0), ("代开发票", 1)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "invalid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"label": 1}', "'text'"),
        ('{"text": "  ", "label": 1}', "'text'"),
        ('{"text": "x", "label": 2}', "'label' must be 0 or 1"),
        ('{"text": "x", "label": true}', "'label' must be 0 or 1"),
        ('{"text": "x", "decision": "maybe"}', "expected 'label'"),
    ],
)
def test_a_bad_line_is_an_error_naming_it(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"text": "ok", "label": 0}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message) as e:
        list(JsonlReviewSource(path).labels())
    assert e.value.where == f"{path}:2"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read review labels"):
        list(JsonlReviewSource(tmp_path / "nope.jsonl").labels())
