"""The engine end to end: verdicts, versions, fusion, input errors, and atomic reloads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from smsguard.core import InputError, LexiconError, PolicyError
from smsguard.engine import MATCHERS, Engine, Lexicon, Message, Verdict, load_policy
from smsguard.engine._engine import NO_MODEL_NOTE

MakeEngine = Callable[..., Engine]


def test_verdict_carries_versions_and_the_no_model_note(
    make_engine: MakeEngine, policy_file: Path, lexicon_dir: Path
) -> None:
    engine = make_engine(model_path=lexicon_dir / "no-such-model.onnx")  # a missing file runs without a model
    verdict = engine.screen(Message(text="【示例商城】您的订单已发货", id="m-1"))
    assert verdict.id == "m-1"
    assert verdict.decision == "pass"
    assert verdict.score == 0.0
    assert verdict.versions.policy == load_policy(policy_file)[1]
    assert verdict.versions.lexicon == Lexicon.load(lexicon_dir).version
    assert verdict.versions.model == "none"
    assert verdict.versions == engine.versions
    assert verdict.classifier is None
    assert verdict.notes == [NO_MODEL_NOTE]
    assert "no classifier model" in NO_MODEL_NOTE


def test_verdict_json_shape(shared_engine: Engine) -> None:
    verdict = shared_engine.screen(Message(text="【示例商城】代 开 發 票", id=7))
    data = msgspec.json.decode(msgspec.json.encode(verdict))
    assert {"id", "decision", "score", "reasons", "versions", "kind", "length", "segments", "notes"} <= set(data)
    (r,) = data["reasons"]
    assert set(r) >= {"code", "category", "severity", "source", "term", "start", "end"}
    assert (r["code"], r["source"], r["term"]) == ("lexicon.fraud", "lexicon", "代开发票")
    assert "【示例商城】代 开 發 票"[r["start"] : r["end"]] == "代 开 發 票"


def test_lexicon_reasons_follow_policy_categories(shared_engine: Engine) -> None:
    cases = {
        "【示例商城】澳门赌场": ("lexicon.gambling", "high", "block"),  # gambling/high → block
        "【示例商城】代开发票": ("lexicon.fraud", "medium", "block"),  # fraud/medium → block
        "【示例商城】试药": ("lexicon.fraud", "low", "review"),  # fraud/low → review
    }
    for text, (code, severity, action) in cases.items():
        verdict = shared_engine.screen(Message(text=text))
        (r,) = verdict.reasons
        assert (r.code, r.severity, r.action, r.source) == (code, severity, action, "lexicon")
        assert verdict.decision == action


def test_unlisted_category_uses_default(make_engine: MakeEngine, write_lexicon, tmp_path: Path) -> None:
    lexicon = write_lexicon(tmp_path / "lex2", {"x.tsv": "刷单\timported\tmedium\tsubstring\n"})
    verdict = make_engine(lexicon_dirs=(lexicon,)).screen(Message(text="【示例商城】刷单兼职"))
    (r,) = verdict.reasons
    assert (r.category, r.action) == ("imported", "review")  # default_category: medium → review


def test_decision_is_the_strictest_reason_and_score_its_weight(shared_engine: Engine) -> None:
    # signature.multiple is low / review.
    review = shared_engine.screen(Message(text="【示例商城】【另一家】您的订单已发货"))
    assert (review.decision, review.score) == ("review", 0.35)
    both = shared_engine.screen(Message(text="【示例商城】【另一家】澳门赌场"))
    assert both.decision == "block"
    assert both.score == 0.95  # gambling/high


def test_reasons_are_sorted_by_position(shared_engine: Engine) -> None:
    text = "【示例商城】澳门赌场，代开发票，咨询13800138000"
    verdict = shared_engine.screen(Message(text=text, kind="notification"))
    spans = [(r.start, r.end) for r in verdict.reasons]
    assert spans == sorted(spans)
    assert [text[r.start : r.end] for r in verdict.reasons] == ["赌场", "代开发票", "13800138000"]


def test_positionless_reasons_come_last(shared_engine: Engine) -> None:
    verdict = shared_engine.screen(Message(text="澳门赌场"))
    assert [r.code for r in verdict.reasons] == ["lexicon.gambling", "signature.missing"]


def test_screen_many_keeps_order_and_ids(shared_engine: Engine) -> None:
    messages = [Message(text=t, id=i) for i, t in enumerate(["【示例商城】赌场", "【示例商城】您好", "微信abc12345"])]
    verdicts = shared_engine.screen_many(messages)
    assert [v.id for v in verdicts] == [0, 1, 2]
    assert [v.decision for v in verdicts] == ["block", "pass", "block"]
    assert verdicts == [shared_engine.screen(m) for m in messages]
    assert shared_engine.screen_many([]) == []


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_an_input_error(shared_engine: Engine, text: str) -> None:
    with pytest.raises(InputError) as info:
        shared_engine.screen(Message(text=text))
    assert info.value.where == "$.text"
    with pytest.raises(InputError) as info:
        shared_engine.screen_many([Message(text="ok"), Message(text=text)])
    assert info.value.where == "$[1].text"


@pytest.mark.parametrize("matcher", sorted(MATCHERS))
def test_matchers_give_the_same_verdicts(make_engine: MakeEngine, matcher: str) -> None:
    texts = ["【示例商城】澳门赌场代開發票", "测试药物", "来玩百家乐吧", "无抵押贷款", "【示例商城】您好"]
    default = make_engine()
    other = make_engine(matcher=matcher)
    assert other.screen_many([Message(text=t) for t in texts]) == default.screen_many([Message(text=t) for t in texts])


def test_policy_error_stops_the_engine_from_starting(make_engine: MakeEngine, policy_file: Path) -> None:
    policy_file.write_text(policy_file.read_text("utf-8").replace("block_at: 0.9", "block_at: 9"), "utf-8")
    with pytest.raises(PolicyError) as info:
        make_engine()
    assert info.value.where == "policy.yaml: $.thresholds.block_at"


# -- reload ------------------------------------------------------------------------------------


def test_reload_policy_and_lexicon(make_engine: MakeEngine, policy_file: Path, lexicon_dir: Path) -> None:
    engine = make_engine()
    before = engine.versions
    assert engine.screen(Message(text="【示例商城】刷单")).decision == "pass"

    (lexicon_dir / "extra.tsv").write_text("刷单\tfraud\thigh\tsubstring\n", encoding="utf-8")
    assert engine.screen(Message(text="【示例商城】刷单")).decision == "pass"  # nothing changes until reload
    after = engine.reload("lexicon")
    assert after.lexicon != before.lexicon
    assert after.policy == before.policy
    assert engine.screen(Message(text="【示例商城】刷单")).decision == "block"

    policy_file.write_text(policy_file.read_text("utf-8").replace('version: "', 'version: "x'), "utf-8")
    after_policy = engine.reload("policy")
    assert after_policy.policy != after.policy
    assert after_policy.lexicon == after.lexicon
    assert engine.reload() == engine.versions


def test_reload_rejects_unknown_parts(shared_engine: Engine) -> None:
    with pytest.raises(InputError) as info:
        shared_engine.reload("lexicons")
    assert info.value.code == "reload.unknown"


def test_broken_reload_keeps_the_old_snapshot(make_engine: MakeEngine, lexicon_dir: Path, policy_file: Path) -> None:
    engine = make_engine()
    before = engine.versions
    (lexicon_dir / "broken.tsv").write_text("刷单\tfraud\tsevere\tsubstring\n", encoding="utf-8")
    with pytest.raises(LexiconError) as info:
        engine.reload()
    assert info.value.where == f"{lexicon_dir / 'broken.tsv'}:1"
    assert engine.versions == before
    assert engine.screen(Message(text="【示例商城】澳门赌场")).decision == "block"  # old lexicon still in force

    (lexicon_dir / "broken.tsv").unlink()
    policy_file.write_text("version: 1\n", encoding="utf-8")
    with pytest.raises(PolicyError):
        engine.reload("policy")
    assert engine.versions == before


def test_reload_is_atomic_under_concurrent_screening(make_engine: MakeEngine, lexicon_dir: Path) -> None:
    old_content = "刷单\tfraud\thigh\tsubstring\n"
    new_content = "代练\tfraud\thigh\tsubstring\n"
    (lexicon_dir / "swap.tsv").write_text(old_content, encoding="utf-8")
    engine = make_engine()
    old_version = engine.versions.lexicon
    (lexicon_dir / "swap.tsv").write_text(new_content, encoding="utf-8")
    new_version = Lexicon.load(lexicon_dir).version
    (lexicon_dir / "swap.tsv").write_text(old_content, encoding="utf-8")

    batch = [Message(text="【示例商城】刷单代练，澳门赌场"), Message(text="【示例商城】您好")]
    verdicts: list[Verdict] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def screen_forever() -> None:
        try:
            while not stop.is_set():
                verdicts.extend(engine.screen_many(batch))
        except BaseException as e:  # any failure at all is what this test looks for
            errors.append(e)

    def wait_for_more(seen: int) -> None:
        # Let the worker screen on the snapshot just swapped in before the next reload.
        deadline = time.monotonic() + 10
        while len(verdicts) <= seen and not errors and time.monotonic() < deadline:
            time.sleep(0.001)

    worker = threading.Thread(target=screen_forever)
    worker.start()
    try:
        wait_for_more(0)
        for i in range(12):
            (lexicon_dir / "swap.tsv").write_text(new_content if i % 2 == 0 else old_content, encoding="utf-8")
            engine.reload("lexicon")
            wait_for_more(len(verdicts))
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert errors == []
    assert len(verdicts) > 0
    assert {v.versions.lexicon for v in verdicts} == {old_version, new_version}
    for v in verdicts[::2]:
        terms = {r.term for r in v.reasons}
        # Every verdict is wholly one snapshot: its terms match the lexicon version it reports.
        expected = "刷单" if v.versions.lexicon == old_version else "代练"
        assert terms == {expected, "赌场"}
