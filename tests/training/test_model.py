"""The vectorizer's vocabulary is cut so that the ONNX graph counts exactly what sklearn counts."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from smsguard.training.export import plain_onnx_models
from smsguard.training.model import Hyper, fit_vectorizer, onnx_safe


def test_onnx_safe_drops_ngrams_with_a_missing_token_or_prefix() -> None:
    vocab = {"官", "官 僚", "a", "b", "a b", "a b c", "c", "x y", "x", "d", "d e", "d e f", "e", "f"}
    # 官 僚: 僚 is no feature; a b c: fine; x y: y is no feature; d e f: fine
    assert onnx_safe(vocab) == {"官", "a", "b", "a b", "a b c", "c", "x", "d", "d e", "d e f", "e", "f"}
    # dropping a bigram orphans the trigram built on it
    assert onnx_safe({"p", "q", "r", "p q r", "p q"} - {"p q"}) == {"p", "q", "r"}


def test_a_tie_at_the_feature_cut_no_longer_breaks_parity() -> None:
    """官 僚 and 僚 have the same document frequency; with one feature left to take, sklearn may keep the bigram
    alone. The fitted vocabulary must not, and the ONNX graph must then score like sklearn."""
    from sklearn.linear_model import LogisticRegression

    texts = ["<s> 官 僚 </s>", "<s> 官 员 </s>", "<s> 官 方 </s>", "<s> 百 姓 </s>", "<s> 百 货 </s>"] * 3
    hyper = Hyper(max_features=12, min_df=1)
    vec = fit_vectorizer(hyper, texts)
    assert onnx_safe(vec.vocabulary_) == set(vec.vocabulary_)
    y = np.array([1, 0, 0, 1, 0] * 3)
    x = vec.transform(texts)
    spam = LogisticRegression().fit(x, y)
    category = LogisticRegression().fit(x, ["a", "b", "a", "b", "a"] * 3)
    model, _ = plain_onnx_models(vec, spam, category)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_p = sess.run(None, {"text": np.array(texts, dtype=object).reshape(-1, 1)})[1][:, 1]
    assert np.max(np.abs(onnx_p - spam.predict_proba(x)[:, 1])) < 1e-5


def _tiny_model() -> tuple[object, object, object]:
    from sklearn.linear_model import LogisticRegression

    texts = ["<s> 哈 哈 哈 哈 </s>", "<s> 官 员 好 </s>", "<s> 中 奖 了 中 奖 了 </s>", "<s> 百 姓 </s>"] * 3
    vec = fit_vectorizer(Hyper(max_features=1000, min_df=1), texts)
    x = vec.transform(texts)
    spam = LogisticRegression(C=10).fit(x, [0, 0, 1, 1] * 3)
    category = LogisticRegression(C=10).fit(x, ["ad", "fraud", "ad", "loan"] * 3)
    return vec, spam, category


def test_the_lookup_graph_counts_presence_and_ignores_padding() -> None:
    """Repeated n-grams count once (binary TF-IDF), rows of different lengths share a padded batch, and a
    message of unknown tokens scores the intercept alone: exactly what sklearn computes."""
    from smsguard.training.export import CATEGORY_OUTPUT, SPAM_OUTPUT, to_onnx_model

    vec, spam, category = _tiny_model()
    model = to_onnx_model(vec, spam, category, {"categories": "[]"})
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    texts = ["<s> 哈 哈 哈 哈 哈 哈 哈 哈 </s>", "<s> </s>", "<s> 中 奖 了 中 奖 了 中 奖 了 </s>", "<s> 未 知 词 </s>",
             "<s> 官 员 好 百 姓 哈 哈 </s>"]
    got_spam, got_cat = sess.run([SPAM_OUTPUT, CATEGORY_OUTPUT], {"text": np.array(texts, dtype=object).reshape(-1, 1)})
    x = vec.transform(texts)
    assert np.max(np.abs(got_spam[:, 1] - spam.predict_proba(x)[:, 1])) < 1e-6
    assert np.max(np.abs(got_cat - category.predict_proba(x))) < 1e-6
    alone = [sess.run([SPAM_OUTPUT], {"text": np.array([[t]], dtype=object)})[0][0, 1] for t in texts]
    assert np.max(np.abs(np.array(alone) - got_spam[:, 1])) < 1e-6


def test_a_vocabulary_the_graph_cannot_look_up_is_refused() -> None:
    from smsguard.training.export import to_onnx_model

    vec, spam, category = _tiny_model()
    vec.vocabulary_ = {**vec.vocabulary_, "官 僚": len(vec.vocabulary_)}  # 僚 is no feature
    with pytest.raises(ValueError, match="not a feature"):
        to_onnx_model(vec, spam, category, {})
