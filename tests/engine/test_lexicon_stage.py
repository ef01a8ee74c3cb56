"""The lexicon stage: matching after normalization, allowlist, word/exact modes, original spans."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from smsguard.engine import MATCHERS, Lexicon, LexiconHit, LexiconStage

WriteLexicon = Callable[[Path, dict[str, str]], Path]

FILES = {
    "fraud.tsv": "代开发票\tfraud\tmedium\tsubstring\n试药\tdrugs\tlow\tsubstring\n发票\tfraud\tlow\tsubstring\n",
    "gambling.tsv": "百家乐\tgambling\thigh\tword\n赌场\tgambling\thigh\tsubstring\n",
    "loan.tsv": "无抵押贷款\tloan\tmedium\texact\n",
    "allow.tsv": "测试\tcommon word\n",
}


@pytest.fixture(scope="module", params=sorted(MATCHERS))
def stage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LexiconStage:
    directory = tmp_path_factory.mktemp("lex")
    for name, content in FILES.items():
        (directory / name).write_text(content, encoding="utf-8")
    return LexiconStage(Lexicon.load(directory), matcher=request.param)


def found(stage: LexiconStage, text: str) -> list[tuple[str, str, int, int]]:
    """(term, covered original text, start, end) of every hit, in span order."""
    hits = stage.scan(text)
    return sorted((h.term.term, text[h.start : h.end], h.start, h.end) for h in hits)


def test_plain_substring(stage: LexiconStage) -> None:
    assert found(stage, "可以代开发票") == [("代开发票", "代开发票", 2, 6), ("发票", "发票", 4, 6)]


def test_no_hit(stage: LexiconStage) -> None:
    assert stage.scan("【示例商城】您的订单已发货") == []


@pytest.mark.parametrize(
    ("text", "covered"),
    [
        ("代 开 發 票", "代 开 發 票"),  # spaces and traditional characters
        ("请代.开.发.票!", "代.开.发.票"),  # punctuation inside, not around
        ("ＤＡＩ代\u200b开\u200d发😀票。", "代\u200b开\u200d发😀票"),  # zero-width and emoji inside
        ("代開發票", "代開發票"),
    ],
)
def test_evasions_span_the_original_characters(stage: LexiconStage, text: str, covered: str) -> None:
    hits = [h for h in stage.scan(text) if h.term.term == "代开发票"]
    assert len(hits) == 1
    assert text[hits[0].start : hits[0].end] == covered


def test_whole_evasion_is_covered_exactly(stage: LexiconStage) -> None:
    # The example: 代 开 發 票 → the span covers all of it, from 代 to 票.
    text = "代 开 發 票"
    hits = [h for h in stage.scan(text) if h.term.term == "代开发票"]
    assert [(h.start, h.end) for h in hits] == [(0, len(text))]


def test_allowlist_suppresses_overlapping_hits(stage: LexiconStage) -> None:
    assert found(stage, "测试药物") == []  # 测试 overlaps 试药
    assert found(stage, "測試藥物") == []  # the allowlist is folded too


def test_allowlist_leaves_other_occurrences(stage: LexiconStage) -> None:
    assert found(stage, "测试一下，再试药") == [("试药", "试药", 6, 8)]
    assert found(stage, "试药") == [("试药", "试药", 0, 2)]


def test_word_mode_honours_jieba_boundaries(stage: LexiconStage) -> None:
    assert found(stage, "来玩百家乐吧") == [("百家乐", "百家乐", 2, 5)]
    assert found(stage, "澳门百家乐赌场")[0] == ("百家乐", "百家乐", 2, 5)
    assert found(stage, "百家乐观的人") == []  # jieba: 百家 / 乐观
    assert found(stage, "一百家乐器行") == []  # jieba: 一百家 / 乐器行


def test_substring_mode_ignores_boundaries(stage: LexiconStage) -> None:
    # 赌场 is substring mode: it fires even inside a longer word.
    assert ("赌场", "赌场", 2, 4) in found(stage, "澳门赌场")
    assert found(stage, "大赌场馆") == [("赌场", "赌场", 1, 3)]


def test_exact_mode_needs_the_whole_normalized_message(stage: LexiconStage) -> None:
    assert found(stage, "无抵押贷款") == [("无抵押贷款", "无抵押贷款", 0, 5)]
    assert found(stage, " 无 抵押 贷款！") == [("无抵押贷款", "无 抵押 贷款", 1, 8)]
    assert found(stage, "無抵押貸款") == [("无抵押贷款", "無抵押貸款", 0, 5)]
    assert found(stage, "无抵押贷款吗") == []
    assert found(stage, "提供无抵押贷款") == []


def test_hit_carries_its_term(stage: LexiconStage) -> None:
    (hit,) = [h for h in stage.scan("赌场") if h.term.term == "赌场"]
    assert isinstance(hit, LexiconHit)
    assert (hit.term.category, hit.term.severity, hit.term.mode) == ("gambling", "high", "substring")
    path, line = hit.term.where.rsplit(":", 1)  # a tmp directory, outside the project: its absolute path
    assert Path(path).is_absolute() and Path(path).name == "gambling.tsv" and line == "2"


def test_scan_many_equals_scan(stage: LexiconStage) -> None:
    texts = ["代 开 發 票", "测试药物", "来玩百家乐吧", "无抵押贷款", "", "1o2", "正常消息"]
    assert stage.scan_many(texts) == [stage.scan(t) for t in texts]
    folded = [stage.normalizer.fold(t) for t in texts]
    assert stage.scan_many(texts, folded) == stage.scan_many(texts)


def test_batch_texts_never_join(stage: LexiconStage) -> None:
    # The batch is matched as one string; a term split across two messages must not be found,
    # and every span is local to its own message.
    hits = stage.scan_many(["请代开", "发票", "", "代开发票"])
    assert [[(h.term.term, h.start, h.end) for h in hs] for hs in hits] == [
        [],
        [("发票", 0, 2)],
        [],
        [("代开发票", 0, 4), ("发票", 2, 4)],
    ]


def test_same_term_in_two_files_hits_twice(tmp_path: Path, write_lexicon: WriteLexicon) -> None:
    # The same key from two categories is two reasons, not one.
    lexicon = write_lexicon(
        tmp_path, {"a.tsv": "代开发票\tfraud\tmedium\tsubstring\n", "b.tsv": "代開發票\tillegal\thigh\tsubstring\n"}
    )
    hits = LexiconStage(Lexicon.load(lexicon)).scan("代开发票")
    assert sorted((h.term.category, h.start, h.end) for h in hits) == [("fraud", 0, 4), ("illegal", 0, 4)]


def test_same_file_name_in_two_directories(tmp_path: Path, write_lexicon: WriteLexicon) -> None:
    # Shipped lexicons/fraud.tsv and an imported var/lexicons/fraud.tsv: both terms report.
    first = write_lexicon(tmp_path / "shipped", {"fraud.tsv": "代开发票\tfraud\tlow\tsubstring\n"})
    second = write_lexicon(tmp_path / "user", {"fraud.tsv": "代開發票\tfraud\thigh\tsubstring\n"})
    hits = LexiconStage(Lexicon.load(first, second)).scan("代开发票")
    assert sorted((h.term.severity, h.term.where) for h in hits) == [
        ("high", f"{second / 'fraud.tsv'}:1"),  # each hit names its own file, not just "fraud.tsv:1"
        ("low", f"{first / 'fraud.tsv'}:1"),
    ]


def test_empty_lexicon_finds_nothing(tmp_path: Path) -> None:
    assert LexiconStage(Lexicon.load(tmp_path)).scan_many(["代开发票", "赌场"]) == [[], []]
