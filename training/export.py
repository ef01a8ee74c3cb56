r"""sklearn → ONNX: one graph, prepared token string in, spam and category probabilities out.

The sklearn model is

    x = l2_normalize(presence(ngrams) * idf)          (TfidfVectorizer, binary=True)
    spam = sigmoid(w · x + b),  category = softmax(W x + c)   (two LogisticRegression heads)

skl2onnx's literal translation makes a dense [N, V] row per message and passes over it six times
(TfIdfVectorizer, casts, Mul idf, Normalizer, LinearClassifier × 2): its cost grows with the
vocabulary, ~0.5 µs a message per 1k features even after folding the tail into one MatMul. But a
message holds a few hundred n-grams, not 100k, and because the features are binary,
‖x‖² = Σ idf²·presence is a sum over the n-grams present like the dot products are. So the graph
looks the n-grams up instead:

    ids     = LabelEncoder(tokens)                        token → id (0: not a feature, and padding)
    feats   = [uni(ids), bi(ids[:-1]·M + ids[1:]), tri(…)]  n-gram → feature row (V: none)
    unique  = sort feats per message, duplicates → V      (presence, not counts)
    z       = Σ rows of [w·idf | Wᵀ·idf | idf²] at unique  (row V is zeros)
    spam    = sigmoid(z₀ / √z_last + b),  category = softmax(z₁..K / √z_last + c)

Tokenisation is skl2onnx's own Tokenizer node (sklearn's ``\S+`` token pattern). Every token of an
n-gram must be a unigram feature for the id arithmetic (``model.onnx_safe`` makes the vocabulary so).
``plain_onnx_models`` keeps skl2onnx's literal graphs so training can check this graph against them
and report both speeds; the parity test checks the committed graph against the sklearn pipeline.
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


def _token_graph(vectorizer: TfidfVectorizer) -> tuple[onnx.ModelProto, str]:
    """skl2onnx's vectorizer graph cut before its n-gram op: text in, padded tokens [N, T] out."""
    model = _convert(vectorizer)
    graph = model.graph
    ops = [n.op_type for n in graph.node]
    cut = ops.index("TfIdfVectorizer")
    if ops[:cut] != ["Tokenizer", "Flatten"]:
        raise ValueError(f"unexpected skl2onnx vectorizer graph: {ops}")
    tokens = graph.node[cut].input[0]
    del graph.node[cut:]
    del graph.output[:]
    del graph.initializer[:]
    return model, tokens


_Tables = tuple[list[str], np.ndarray, list[int], list[int], list[int], list[int]]


def _ngram_tables(vocabulary: Mapping[str, int]) -> _Tables:
    """Token ids (1..M-1, sorted tokens), unigram id → feature row, and bigram / trigram keys → feature rows."""
    v = len(vocabulary)
    tokens = sorted(g for g in vocabulary if " " not in g)
    tid = {t: i + 1 for i, t in enumerate(tokens)}
    m = len(tokens) + 1
    uni = np.full(m, v, dtype=np.int64)
    for t, i in tid.items():
        uni[i] = vocabulary[t]
    bi_keys: list[int] = []
    bi_rows: list[int] = []
    tri_keys: list[int] = []
    tri_rows: list[int] = []
    for gram, row in vocabulary.items():
        parts = gram.split(" ")
        if any(p not in tid for p in parts):
            raise ValueError(f"n-gram {gram!r} holds a token that is not a feature (fit with model.fit_vectorizer)")
        if len(parts) == 2:
            bi_keys.append(tid[parts[0]] * m + tid[parts[1]])
            bi_rows.append(row)
        elif len(parts) == 3:
            tri_keys.append((tid[parts[0]] * m + tid[parts[1]]) * m + tid[parts[2]])
            tri_rows.append(row)
        elif len(parts) > 3:
            raise ValueError(f"n-gram {gram!r}: the export handles 1–3-grams")
    return tokens, uni, bi_keys, bi_rows, tri_keys, tri_rows


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
    if vectorizer.ngram_range[1] > 3:
        raise ValueError("the export handles 1–3-grams")
    model, tokens = _token_graph(vectorizer)
    graph = model.graph
    ml = [o for o in model.opset_import if o.domain == "ai.onnx.ml"]
    if ml:
        ml[0].version = max(ml[0].version, OPSET["ai.onnx.ml"])  # LabelEncoder's int64 keys: ai.onnx.ml ≥ 2
    else:
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", OPSET["ai.onnx.ml"]))
    idf = vectorizer.idf_.astype(np.float64)  # indexed like vocabulary_
    k = len(category.classes_)
    weights = np.column_stack(
        [spam.coef_[0] * idf, (category.coef_ * idf).T, idf * idf]  # numerators, then ‖x‖²
    ).astype(np.float32)
    v = weights.shape[0]
    weights = np.vstack([weights, np.zeros((1, weights.shape[1]), np.float32)])  # row v: "no feature"
    intercepts = np.concatenate([spam.intercept_, category.intercept_]).astype(np.float32)
    names, uni, bi_keys, bi_rows, tri_keys, tri_rows = _ngram_tables(vectorizer.vocabulary_)
    m = len(names) + 1

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def i64(name: str, *values: int) -> str:
        return const(name, np.array(values, dtype=np.int64))

    w = const("head_weights", weights)
    b = const("head_intercepts", intercepts)
    eps = const("head_eps", np.array(_EPS, dtype=np.float32))
    one = const("head_one", np.array(1.0, dtype=np.float32))
    axis = i64("head_axis", 1)
    at = {i: i64(f"head_at_{i}", i) for i in sorted({0, 1, 2, 1 + k, 2 + k})}
    last, end, none, base = i64("ngram_last", -1), i64("ngram_end", 2**62), i64("ngram_none", v), i64("ngram_m", m)
    uni_rows = const("ngram_unigram_rows", uni)

    def slice_(x: str, start: str, stop: str, out: str) -> onnx.NodeProto:
        return helper.make_node("Slice", [x, start, stop, axis], [out], name=f"ngram_{out}")

    def lookup(keys: str, table_keys: list[int], rows: list[int], out: str) -> onnx.NodeProto:
        return helper.make_node("LabelEncoder", [keys], [out], domain="ai.onnx.ml", name=f"ngram_{out}",
                                keys_int64s=table_keys, values_int64s=rows, default_int64=v)

    graph.node.extend(
        [
            helper.make_node("LabelEncoder", [tokens], ["ids"], domain="ai.onnx.ml", name="ngram_ids",
                             keys_strings=names, values_int64s=list(range(1, m)), default_int64=0),
            helper.make_node("Gather", [uni_rows, "ids"], ["rows1"], axis=0, name="ngram_rows1"),
            slice_("ids", at[0], last, "ids_head"),
            slice_("ids", at[1], end, "ids_tail1"),
            helper.make_node("Mul", ["ids_head", base], ["ids_head_m"], name="ngram_bi_mul"),
            helper.make_node("Add", ["ids_head_m", "ids_tail1"], ["keys2"], name="ngram_bi_add"),
            lookup("keys2", bi_keys, bi_rows, "rows2"),
            slice_("keys2", at[0], last, "keys2_head"),
            slice_("ids", at[2], end, "ids_tail2"),
            helper.make_node("Mul", ["keys2_head", base], ["keys2_head_m"], name="ngram_tri_mul"),
            helper.make_node("Add", ["keys2_head_m", "ids_tail2"], ["keys3"], name="ngram_tri_add"),
            lookup("keys3", tri_keys, tri_rows, "rows3"),
            helper.make_node("Concat", ["rows1", "rows2", "rows3"], ["rows"], axis=1, name="ngram_rows"),
            # presence, not counts: sort each message's rows and send every repeat to the zero row
            helper.make_node("Shape", ["rows"], ["n_rows"], start=1, end=2, name="ngram_n_rows"),
            helper.make_node("TopK", ["rows", "n_rows"], ["sorted", "sorted_at"], axis=1, largest=0, sorted=1,
                             name="ngram_sort"),
            slice_("sorted", at[1], end, "sorted_next"),
            slice_("sorted", at[0], last, "sorted_prev"),
            helper.make_node("Equal", ["sorted_next", "sorted_prev"], ["repeat"], name="ngram_repeat"),
            helper.make_node("Where", ["repeat", none, "sorted_next"], ["next_unique"], name="ngram_next_unique"),
            slice_("sorted", at[0], at[1], "sorted_first"),
            helper.make_node("Concat", ["sorted_first", "next_unique"], ["unique"], axis=1, name="ngram_unique"),
            helper.make_node("Gather", [w, "unique"], ["weights_at"], axis=0, name="head_gather"),
            helper.make_node("ReduceSum", ["weights_at", axis], ["z"], keepdims=0, name="head_sum"),
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
