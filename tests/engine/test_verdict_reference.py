"""The engine answers byte for byte what it answered before its hot path was reworked (issue 22).

``tests/data/verdict_reference.json`` holds digests of the original engine's verdicts (see
``verdict_reference.py``): the golden sets per message, samples of the shared corpora per block.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
import verdict_reference as ref  # tests/engine is on sys.path (rootdir-relative test modules)

from smsguard.engine import Engine, default_config

FIXTURE = json.loads(ref.FIXTURE.read_text("utf-8"))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(default_config())


def test_the_reference_was_made_by_these_versions(engine: Engine) -> None:
    versions = {"lexicon": engine.versions.lexicon, "model": engine.versions.model}
    assert versions == FIXTURE["versions"], (
        "lexicon or model changed: regenerate the reference (python tests/engine/verdict_reference.py) with the "
        "engine as it was BEFORE any change to the engine's code"
    )


@pytest.mark.parametrize("content_only", [False, True])
def test_golden_verdicts_are_byte_identical(engine: Engine, content_only: bool) -> None:
    messages = ref.golden_messages()
    got = [ref.digest(b) for b in ref.verdict_bytes(engine, messages, content_only)]
    want = FIXTURE["golden"][f"content_only={content_only}"]
    wrong = [(m.id, m.text[:40]) for m, g, w in zip(messages, got, want, strict=True) if g != w]
    assert not wrong, f"{len(wrong)} golden verdicts changed, first: {wrong[:5]}"


@pytest.fixture(scope="module")
def engines(engine: Engine):
    if not ref.SHARED.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the shared corpora ({ref.SHARED}) are required under CI=true", pytrace=False)
        pytest.skip(f"shared corpora not found at {ref.SHARED}")
    with tempfile.TemporaryDirectory() as tmp:
        yield {"default": engine, "shared_lexicons": ref.shared_lexicon_engine(Path(tmp))}


@pytest.mark.parametrize("case", sorted(FIXTURE.get("corpora", {})))
def test_corpus_verdicts_are_byte_identical(engines: dict[str, Engine], case: str) -> None:
    name, _, variant = case.partition("+")
    texts = ref.corpus_sample(name)
    if variant:
        texts = ref.disguised(texts)
    for engine_name, want in FIXTURE["corpora"][case].items():
        got = ref.corpus_digests(engines[engine_name], texts)
        bad = [i * ref.BLOCK for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
        assert not bad, f"{case} on {engine_name}: blocks starting at messages {bad[:10]} changed"
