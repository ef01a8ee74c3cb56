"""sklearn → ONNX: one graph, prepared token string in, spam and category probabilities out.

skl2onnx converts the fitted ``TfidfVectorizer`` (its Tokenizer and n-gram pool are the part of
the graph that needs a converter). The sklearn model is

    x = l2_normalize(presence(ngrams) * idf)          (TfidfVectorizer, binary=True)
    spam = sigmoid(w · x + b),  category = softmax(W x + c)   (two LogisticRegression heads)

and skl2onnx's literal translation of it makes five passes over a dense [N, V] row per message
(cast, cast, Mul idf, Normalizer, LinearClassifier × 2; ~60 µs a message at 30k features, with
``ai.onnx.ml.Normalizer`` alone ~40 µs). Because the features are binary, ‖x‖² = Σ idf²·presence
is linear in the presence vector, so the whole tail is ONE MatMul:

    z = presence @ [w·idf | Wᵀ·idf | idf²]      (V × (1 + K + 1))
    spam = sigmoid(z₀ / √z_last + b),  category = softmax(z₁..K / √z_last + c)

Same function, two passes over the row instead of six. ``plain_onnx_models`` keeps skl2onnx's
literal graphs so training can check the rewrite against them and report both speeds; the
parity test checks the committed graph against the sklearn pipeline.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

INPUT = "text"
SPAM_OUTPUT = "spam_probabilities"
CATEGORY_OUTPUT = "category_probabilities"
OPSET = {"": 18, "ai.onnx.ml": 3}
_EPS = 1e-30  # sklearn leaves an all-zero row at zero; dividing 0 by √ε does the same


def _convert(model: object) -> onnx.ModelProto:
    options = {id(model.steps[-1][1]): {"zipmap": False}} if isinstance(model, Pipeline) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skl2onnx warns that text conversion is "work in progress"
        return to_onnx(model, initial_types=[(INPUT, StringTensorType([None, 1]))], target_opset=OPSET, options=options)


def plain_onnx_models(
    vectorizer: TfidfVectorizer, spam: LogisticRegression, category: LogisticRegression
) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """skl2onnx's own graphs for the two pipelines (reference for the rewrite; not shipped)."""
    return (
        _convert(Pipeline([("tfidf", vectorizer), ("spam", spam)])),
        _convert(Pipeline([("tfidf", vectorizer), ("category", category)])),
    )


def _presence_graph(vectorizer: TfidfVectorizer) -> tuple[onnx.ModelProto, str]:
    """skl2onnx's vectorizer graph cut after the n-gram op, which is switched to emit 0/1 presence."""
    model = _convert(vectorizer)
    graph = model.graph
    ops = [n.op_type for n in graph.node]
    cut = ops.index("TfIdfVectorizer")
    if ops[:cut] != ["Tokenizer", "Flatten"]:
        raise ValueError(f"unexpected skl2onnx vectorizer graph: {ops}")
    ngram = graph.node[cut]
    attrs = {a.name: a for a in ngram.attribute}
    # IDF mode with unit weights writes 1 for every n-gram present: exactly sklearn's binary=True counts
    attrs["mode"].s = b"IDF"
    attrs["weights"].floats[:] = [1.0] * len(attrs["weights"].floats)
    del graph.node[cut + 1 :]
    del graph.output[:]
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model, ngram.output[0]


def to_onnx_model(
    vectorizer: TfidfVectorizer,
    spam: LogisticRegression,
    category: LogisticRegression,
    metadata: Mapping[str, str],
) -> onnx.ModelProto:
    """The serving graph for a fitted binary TF-IDF vectorizer and its two logistic-regression heads."""
    if not (vectorizer.binary and vectorizer.use_idf and vectorizer.norm == "l2" and not vectorizer.sublinear_tf):
        raise ValueError("the export assumes TfidfVectorizer(binary=True, use_idf=True, norm='l2')")
    if spam.coef_.shape[0] != 1 or list(spam.classes_) != [0, 1]:
        raise ValueError("the spam head must be a binary LogisticRegression over classes [0, 1]")
    model, presence = _presence_graph(vectorizer)
    graph = model.graph
    idf = vectorizer.idf_.astype(np.float64)  # indexed like vocabulary_, as the presence columns are
    k = len(category.classes_)
    weights = np.column_stack(
        [spam.coef_[0] * idf, (category.coef_ * idf).T, idf * idf]  # numerators, then ‖x‖²
    ).astype(np.float32)
    intercepts = np.concatenate([spam.intercept_, category.intercept_]).astype(np.float32)

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    w = const("head_weights", weights)
    b = const("head_intercepts", intercepts)
    eps = const("head_eps", np.array(_EPS, dtype=np.float32))
    one = const("head_one", np.array(1.0, dtype=np.float32))
    axis = const("head_axis", np.array([1], dtype=np.int64))
    at = {i: const(f"head_at_{i}", np.array([i], dtype=np.int64)) for i in sorted({0, 1, 1 + k, 2 + k})}
    graph.node.extend(
        [
            helper.make_node("MatMul", [presence, w], ["z"], name="head_MatMul"),
            helper.make_node("Slice", ["z", at[1 + k], at[2 + k], axis], ["norm_sq"], name="head_norm_sq"),
            helper.make_node("Max", ["norm_sq", eps], ["norm_sq_safe"], name="head_Max"),
            helper.make_node("Sqrt", ["norm_sq_safe"], ["norm"], name="head_Sqrt"),
            helper.make_node("Slice", ["z", at[0], at[1 + k], axis], ["dots"], name="head_dots"),
            helper.make_node("Div", ["dots", "norm"], ["scaled"], name="head_Div"),
            helper.make_node("Add", ["scaled", b], ["logits"], name="head_Add"),
            helper.make_node("Slice", ["logits", at[0], at[1], axis], ["spam_logit"], name="head_spam_logit"),
            helper.make_node("Sigmoid", ["spam_logit"], ["spam_p"], name="head_Sigmoid"),
            helper.make_node("Sub", [one, "spam_p"], ["ham_p"], name="head_Sub"),
            helper.make_node("Concat", ["ham_p", "spam_p"], [SPAM_OUTPUT], axis=1, name="head_spam"),
            helper.make_node(
                "Slice", ["logits", at[1], at[1 + k], axis], ["category_logits"], name="head_category_logits"
            ),
            helper.make_node("Softmax", ["category_logits"], [CATEGORY_OUTPUT], axis=1, name="head_Softmax"),
        ]
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info(SPAM_OUTPUT, TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info(CATEGORY_OUTPUT, TensorProto.FLOAT, [None, k]),
        ]
    )
    graph.name = "smsguard_classifier"
    model.producer_name = "smsguard"
    model.producer_version = ""
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(model)
    return model
