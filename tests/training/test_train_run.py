"""``smsguard train`` end to end on a small sample: artefacts, card, reproducibility, and the review gate."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest

from smsguard.cli import main
from smsguard.core import get_settings
from smsguard.engine._features import FEATURES_VERSION, fingerprint
from smsguard.engine._onnx_classifier import OnnxClassifier
from smsguard.training import card as card_module
from smsguard.training.data import DATA_DIR, FBS, fbs_text

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
LIMIT = "600"  # rows per corpus: enough for every code path, seconds per run
EPOCH = "1795000000"  # 2026-11-18: a fixed training date makes the file reproducible


@pytest.fixture(scope="module", autouse=True)
def _fixed_date() -> Iterator[None]:
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    get_settings.cache_clear()  # settings are read once per process: read them again with the date set
    yield
    get_settings.cache_clear()
    if old is None:
        del os.environ["SOURCE_DATE_EPOCH"]
    else:
        os.environ["SOURCE_DATE_EPOCH"] = old


def train(out: Path, *extra: str) -> int:
    return main(["train", "--limit", LIMIT, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    assert train(out) == 0
    return out


def test_artefacts_card_and_metrics(trained: Path) -> None:
    onnx_file = trained / "classifier.onnx"
    clf = OnnxClassifier.load(onnx_file)
    digest = hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    assert clf.version == f"20261118-{digest[:8]}"
    assert clf.metadata["features_version"] == FEATURES_VERSION
    assert clf.metadata["features_fingerprint"] == fingerprint()
    assert set(json.loads(clf.metadata["data"])) == {
        "zh_sms80w/zh_sms80w_dedup_train.tsv",
        "fbs_sms/fbs_sms_train.tsv",
        "mudou_spam/train.tsv",
    }
    payload = joblib.load(trained / "classifier.sklearn.joblib")
    assert payload["onnx_sha256"] == digest  # the sklearn twin belongs to exactly this ONNX file
    assert oct(onnx_file.stat().st_mode & 0o777) == "0o644"

    metrics = json.loads((trained / "metrics.json").read_text("utf-8"))
    assert metrics["version"] == clf.version
    assert metrics["parity"]["max_abs_diff_spam"] < 1e-4
    assert metrics["graph"]["max_abs_diff_vs_plain"] < 1e-4
    for name in ("review", "block"):
        at = metrics["new"]["binary"]["at"][name]
        assert {"precision", "recall", "f1", "ham_fpr", "fbs_recall"} <= set(at)
    assert metrics["baseline"]["metrics"]["roc_auc"] > 0.5

    card = (trained / "MODEL_CARD.md").read_text("utf-8")
    for heading in (
        "## Results on the dev split",
        "### Against the issue's targets",
        "## Bad-content category (FBS)",
        "## Calibration",
        "## Size, speed and parity",
        "## Data and reproduction",
        "Quick run: at most 600 rows per corpus",
    ):
        assert heading in card
    assert clf.version in card
    assert re.search(r"\| zh_sms80w/zh_sms80w_dedup_train.tsv \| 97154 \| `[0-9a-f]{64}` \|", card)
    assert "FBS exactly as published" in card and "transactional" in metrics["split"]["train_by_source"]
    assert card_module.render(metrics) == card  # the card is a function of metrics.json alone


def test_training_is_reproducible(trained: Path, tmp_path: Path) -> None:
    assert train(tmp_path) == 0
    assert (tmp_path / "classifier.onnx").read_bytes() == (trained / "classifier.onnx").read_bytes()


def _reviews(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_reviews_promote_a_model_that_is_not_worse(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    shutil.copytree(trained, out)
    old = OnnxClassifier.load(out / "classifier.onnx").version
    rows = [{"text": f"【示例商城】您的订单{i}号已发货，请注意查收。", "decision": "approve"} for i in range(30)]
    rows += [{"text": f"澳门娱乐城首充送{i}0%，日提款无上限，加微信领取", "label": 1} for i in range(30)]
    reviews = str(_reviews(tmp_path / "r.jsonl", rows))
    assert train(out, "--no-baseline", "--with-reviews", reviews, "--tolerance", "1") == 0
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert metrics["reviews"]["added"] + metrics["reviews"]["dropped_dev_overlap"] == 60
    assert metrics["comparison"]["old_version"] == old
    assert metrics["comparison"]["promoted"] is True
    card = (out / "MODEL_CARD.md").read_text("utf-8")
    assert "## Retraining from reviewer decisions" in card and old in card
    assert OnnxClassifier.load(out / "classifier.onnx").version != old


def test_reviews_that_make_it_worse_are_not_promoted(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    shutil.copytree(trained, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # poison: fraud and ads relabelled as fine by a careless reviewer
    lines = (DATA_DIR / FBS).read_text("utf-8").splitlines()[:800]
    rows = [{"text": fbs_text(line.split("\t", 1)[1]), "label": 0} for line in lines]
    code = train(out, "--no-baseline", "--with-reviews", str(_reviews(tmp_path / "r.jsonl", rows)), "--tolerance", "0")
    assert code == 3
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_reviews_without_a_current_model_promote(tmp_path: Path) -> None:
    rows = [{"text": "【示例商城】您的订单已发货", "label": 0}]
    assert train(tmp_path, "--no-baseline", "--with-reviews", str(_reviews(tmp_path / "r.jsonl", rows))) == 0
    card = (tmp_path / "MODEL_CARD.md").read_text("utf-8")
    assert "no current model to compare against" in card
    assert json.loads((tmp_path / "metrics.json").read_text("utf-8"))["baseline"] is None


def test_an_unreadable_current_model_stops_a_review_retrain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "classifier.onnx").write_bytes(b"not a model")
    rows = [{"text": "【示例商城】您的订单已发货", "label": 0}]
    assert train(tmp_path, "--no-baseline", "--with-reviews", str(_reviews(tmp_path / "r.jsonl", rows))) == 2
    assert "cannot score the current model" in capsys.readouterr().err  # before any training was done
    assert (tmp_path / "classifier.onnx").read_bytes() == b"not a model"
