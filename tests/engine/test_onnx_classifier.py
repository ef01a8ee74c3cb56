"""The committed ONNX classifier: parity with its sklearn pipeline, loading, versions, batching, reloads."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

import joblib
import numpy as np
import onnx
import pytest

from smsguard.core import ModelError
from smsguard.engine import Engine, Message, default_config
from smsguard.engine._features import FEATURES_VERSION, PROBES, fingerprint, prepare
from smsguard.engine._onnx_classifier import CATEGORY_FROM, OnnxClassifier
from smsguard.training import sanity
from smsguard.training.data import FBS, MUDOU, ZH80W, load_corpus
from smsguard.training.run import _atomic_write

MODELS = Path(__file__).resolve().parents[2] / "models"
MODEL = MODELS / "classifier.onnx"
SKLEARN = MODELS / "classifier.sklearn.joblib"
CATEGORIES = {"ad", "fraud", "gambling", "illegal", "loan", "other", "phishing", "politics", "porn"}
MakeEngine = Callable[..., Engine]


@cache
def classifier() -> OnnxClassifier:
    assert MODEL.is_file(), f"no committed model at {MODEL}: run `smsguard train`"
    return OnnxClassifier.load(MODEL)


@cache
def parity_texts() -> tuple[str, ...]:
    """1,000 corpus messages (every k-th row of each train corpus) plus the probe and hand-written texts."""
    texts: list[str] = []
    for name, n in ((ZH80W, 470), (MUDOU, 260), (FBS, 260)):
        rows = load_corpus(name)
        texts += [rows[i].text for i in range(0, len(rows), len(rows) // n)][:n]
    texts += list(PROBES) + [t for group in sanity.SETS.values() for t in group]
    return tuple(texts[:1000])


def test_the_committed_model_is_small_and_versioned() -> None:
    clf = classifier()
    data = MODEL.read_bytes()
    assert len(data) < 25_000_000
    assert re.fullmatch(r"\d{8}-[0-9a-f]{8}", clf.version)
    assert clf.version.endswith(hashlib.sha256(data).hexdigest()[:8])
    assert clf.version.startswith(clf.metadata["trained_on"].replace("-", ""))
    assert set(clf.categories) == CATEGORIES
    assert default_config().model_path == MODEL


def test_the_model_was_trained_on_todays_preparation() -> None:
    # fails when engine normalization (or engine/_features.py) changed what the model would see
    assert classifier().metadata["features_version"] == FEATURES_VERSION
    assert classifier().metadata["features_fingerprint"] == fingerprint(), (
        "prepare() output changed since the model was trained (engine/_normalize.py or _features.py): "
        "run `smsguard train` to retrain on today's features"
    )


@pytest.mark.shared_data
def test_onnxruntime_matches_the_sklearn_pipeline_on_1000_messages() -> None:
    payload = joblib.load(SKLEARN)
    assert payload["onnx_sha256"] == hashlib.sha256(MODEL.read_bytes()).hexdigest(), "stale sklearn twin"
    assert payload["features_version"] == FEATURES_VERSION
    texts = parity_texts()
    assert len(texts) == 1000
    prepared = [prepare(t) for t in texts]
    x = payload["vectorizer"].transform(prepared)
    sk_spam = payload["spam"].predict_proba(x)[:, 1]
    sk_category = payload["category"].predict_proba(x)
    assert list(payload["category"].classes_) == list(classifier().categories)
    spam, category = classifier().predict_prepared(prepared)
    assert np.max(np.abs(spam - sk_spam)) < 1e-4
    assert np.max(np.abs(category - sk_category)) < 1e-4
    # and the path the engine uses gives the same numbers
    results = classifier().predict_many(list(texts[:200]))
    assert np.max(np.abs(np.array([r.score for r in results]) - sk_spam[:200])) < 1e-4
    best = [payload["category"].classes_[i] for i in np.argmax(sk_category[:200], axis=1)]
    # the category is named only where the model calls the message bad
    assert [r.category for r in results] == [
        b if p >= CATEGORY_FROM else None for b, p in zip(best, sk_spam, strict=False)
    ]


@pytest.mark.shared_data
def test_scores_do_not_depend_on_the_batch() -> None:
    # onnxruntime pads shorter rows of a batch; padding must never count as text
    texts = list(parity_texts()[::10])
    together = classifier().predict_many(texts)
    alone = [classifier().predict_many([t])[0] for t in texts]
    # scores are rounded to 6 places, so float-sum-order noise of 1e-7 can show as one unit in the last place
    assert [r.score for r in together] == pytest.approx([r.score for r in alone], abs=2.0001e-6)
    assert classifier().predict_many([]) == []


def test_obvious_cases() -> None:
    clf = classifier()
    bad = clf.predict_many(["澳门新葡京线上娱乐城，首充送50%，日提款无上限，官网 www.xpj888.com"])[0]
    assert bad.score > 0.9 and bad.category == "gambling"
    code = clf.predict_many(["【某银行】您的验证码是382916，5分钟内有效，请勿泄露。"])[0]
    assert code.score < 0.5


def _edited(data: bytes, **metadata: str | None) -> bytes:
    model = onnx.load_from_string(data)
    props = {p.key: p.value for p in model.metadata_props}
    props.update(metadata)
    del model.metadata_props[:]
    for key, value in props.items():
        if value is not None:
            model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def test_load_errors_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as e:
        OnnxClassifier.load(tmp_path / "missing.onnx")
    assert e.value.code == "model.unreadable"
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError) as e:
        OnnxClassifier.load(tmp_path / "junk.onnx")
    assert e.value.code == "model.invalid"
    data = MODEL.read_bytes()
    with pytest.raises(ModelError, match="retrain") as e:
        OnnxClassifier.from_bytes(_edited(data, features_version="chars-v0"))
    assert e.value.code == "model.features_mismatch"
    for categories in (None, '["ad"]', "not json"):
        with pytest.raises(ModelError) as e:
            OnnxClassifier.from_bytes(_edited(data, categories=categories))
        assert e.value.code == "model.interface"


@pytest.mark.shared_data
def test_engine_batches_reports_versions_and_categories(make_engine: MakeEngine, tmp_path: Path) -> None:
    engine = make_engine(model_path=MODEL)
    clf = engine._state.classifier
    assert clf is not None and engine.versions.model == classifier().version
    calls: list[int] = []
    predict = clf.predict_many
    clf.predict_many = lambda texts: calls.append(len(texts)) or predict(texts)  # type: ignore[method-assign]
    messages = [Message(text=t) for t in parity_texts()[:300]]
    messages.append(Message(text="澳门新葡京线上娱乐城，首充送50%，日提款无上限，官网 www.xpj888.com", id="bad"))
    verdicts = engine.screen_many(messages, content_only=True)
    assert calls == [301], "one classifier call per batch"
    assert all(v.versions.model == classifier().version and v.classifier is not None for v in verdicts)
    bad = verdicts[-1]
    reason = next(r for r in bad.reasons if r.source == "classifier")
    assert (reason.category, reason.action, bad.decision) == ("gambling", "block", "block")
    assert bad.classifier is not None and bad.classifier.category == "gambling"


def test_a_new_model_file_is_picked_up_atomically(make_engine: MakeEngine, tmp_path: Path) -> None:
    path = tmp_path / "classifier.onnx"
    shutil.copyfile(MODEL, path)
    engine = make_engine(model_path=path)
    old = engine.versions.model
    before = engine.screen(Message(text="全场5折，回T退订"), content_only=True)
    _atomic_write(path, _edited(MODEL.read_bytes(), trained_on="2027-01-02"))
    assert engine.versions.model == old  # nothing changes until the reload
    new = engine.reload("model").model
    assert new.startswith("20270102-") and new != old
    after = engine.screen(Message(text="全场5折，回T退订"), content_only=True)
    assert (before.versions.model, after.versions.model) == (old, new)
    assert after.classifier == before.classifier  # same weights, new file
    # a broken replacement is refused and the engine keeps serving the model it has
    path.write_bytes(b"truncated")
    with pytest.raises(ModelError):
        engine.reload("model")
    assert engine.screen(Message(text="全场5折，回T退订"), content_only=True).versions.model == new
