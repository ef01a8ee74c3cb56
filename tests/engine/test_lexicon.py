"""Lexicon files: parsing and its errors, versions, importing word lists, and lint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from smsguard.core import LexiconError
from smsguard.engine import PROJECT_ROOT, Lexicon, LexiconStage
from smsguard.engine._lexicon import file_location, format_line, import_terms, parse_lines
from smsguard.engine._lexicon_lint import lint

WriteLexicon = Callable[[Path, dict[str, str]], Path]
LintFiles = Callable[..., list[tuple[str, str]]]

# -- parsing -----------------------------------------------------------------------------------


def test_load_reads_terms_allowlist_and_skips_comments(tmp_path: Path, write_lexicon: WriteLexicon) -> None:
    write_lexicon(
        tmp_path,
        {
            "fraud.tsv": (
                "# comment\n\n代开发票\tfraud\tmedium\tsubstring\n  # indented comment\n百家乐\tgambling\thigh\tword\n"
            ),
            "allow.tsv": "测试\tcommon word\n测验\n",
            "notes.txt": "not a lexicon\tat all\n",
        },
    )
    lex = Lexicon.load(tmp_path, tmp_path / "missing")
    assert [(t.term, t.category, t.severity, t.mode, t.where) for t in lex.terms] == [
        ("代开发票", "fraud", "medium", "substring", f"{tmp_path / 'fraud.tsv'}:3"),
        ("百家乐", "gambling", "high", "word", f"{tmp_path / 'fraud.tsv'}:5"),
    ]
    assert [(t.term, t.category) for t in lex.allow] == [("测试", "allow"), ("测验", "allow")]
    assert len(lex.sources) == 2  # *.tsv only


def test_columns_are_stripped_and_bom_ignored() -> None:
    terms = list(parse_lines("\ufeff 赌场 \tgambling \t high\tsubstring\r\n".encode(), "g.tsv", is_allow=False))
    assert [(t.term, t.category, t.severity, t.mode) for t in terms] == [("赌场", "gambling", "high", "substring")]


@pytest.mark.parametrize(
    ("content", "where", "code", "words"),
    [
        ("ok\tfraud\tlow\tsubstring\n赌场\tgambling\thigh\n", "bad.tsv:2", "lexicon.columns", "got 3"),
        ("赌场\tgambling\thigh\tsubstring\textra\n", "bad.tsv:1", "lexicon.columns", "got 5"),
        ("赌场\n", "bad.tsv:1", "lexicon.columns", "got 1"),
        ("# c\n赌场\tgambling\tsevere\tsubstring\n", "bad.tsv:2", "lexicon.severity", "'severe'"),
        ("赌场\tgambling\thigh\tfuzzy\n", "bad.tsv:1", "lexicon.mode", "'fuzzy'"),
        ("赌场\t\thigh\tsubstring\n", "bad.tsv:1", "lexicon.category", "empty category"),
        ("\tgambling\thigh\tsubstring\n", "bad.tsv:1", "lexicon.empty_term", "empty term"),
    ],
)
def test_parse_errors_name_file_and_line(
    tmp_path: Path, write_lexicon: WriteLexicon, content: str, where: str, code: str, words: str
) -> None:
    write_lexicon(tmp_path, {"bad.tsv": content})
    with pytest.raises(LexiconError) as info:
        Lexicon.load(tmp_path)
    where = f"{tmp_path}/{where}"  # outside the project: the absolute path
    assert info.value.where == where
    assert info.value.code == code
    assert words in info.value.message
    assert str(info.value).startswith(f"{where}: ")


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "gbk.tsv").write_bytes("赌场\tgambling\thigh\tsubstring\n".encode() + "百家乐\n".encode("gbk"))
    with pytest.raises(LexiconError) as info:
        Lexicon.load(tmp_path)
    assert info.value.code == "lexicon.encoding"
    assert info.value.where == f"{tmp_path / 'gbk.tsv'}:2"
    assert "not UTF-8" in info.value.message


def test_allowlist_lines_need_only_a_term(tmp_path: Path, write_lexicon: WriteLexicon) -> None:
    write_lexicon(tmp_path, {"allow.tsv": "测试\n生日快乐\tnote\textra\tcolumns\n"})
    assert [t.term for t in Lexicon.load(tmp_path).allow] == ["测试", "生日快乐"]


def test_term_that_is_only_noise_is_an_error(tmp_path: Path, write_lexicon: WriteLexicon) -> None:
    write_lexicon(tmp_path, {"x.tsv": "赌场\tgambling\thigh\tsubstring\n★★\tsymbols\tlow\tsubstring\n"})
    with pytest.raises(LexiconError) as info:
        LexiconStage(Lexicon.load(tmp_path))
    assert info.value.where == f"{tmp_path / 'x.tsv'}:2"
    assert info.value.code == "lexicon.empty_after_normalization"


# -- locations ---------------------------------------------------------------------------------


def test_where_is_project_relative_inside_the_project() -> None:
    # The shipped lexicons: every term names lexicons/<file>.tsv and the line it is on.
    lex = Lexicon.load(PROJECT_ROOT / "lexicons")
    assert lex.terms and lex.allow
    for t in (*lex.terms[:50], *lex.allow[:10]):
        path, line = t.where.rsplit(":", 1)
        assert path.startswith("lexicons/") and path.endswith(".tsv"), t.where
        assert (PROJECT_ROOT / path).read_text("utf-8-sig").splitlines()[int(line) - 1].split("\t")[0].strip() == t.term


def test_where_is_absolute_outside_the_project(
    tmp_path: Path, write_lexicon: WriteLexicon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same file name in two directories (shipped, imported, SMSGUARD_LEXICONS) is told apart.
    write_lexicon(tmp_path / "a", {"fraud.tsv": "代开发票\tfraud\tmedium\tsubstring\n"})
    write_lexicon(tmp_path / "b", {"fraud.tsv": "# c\n赌场\tgambling\thigh\tsubstring\n"})
    monkeypatch.chdir(tmp_path)  # a relative directory is shown absolute too
    lex = Lexicon.load(Path("a"), tmp_path / "b")
    assert [t.where for t in lex.terms] == [f"{tmp_path}/a/fraud.tsv:1", f"{tmp_path}/b/fraud.tsv:2"]


def test_file_location() -> None:
    assert file_location(PROJECT_ROOT / "lexicons" / "fraud.tsv", 12) == "lexicons/fraud.tsv:12"
    assert file_location(PROJECT_ROOT / "var" / "lexicons" / "zoo.tsv") == "var/lexicons/zoo.tsv"
    assert file_location(PROJECT_ROOT / "lexicons" / ".." / "x.tsv", 1) == "x.tsv:1"
    assert file_location(Path("/srv/extra/fraud.tsv"), 3) == "/srv/extra/fraud.tsv:3"


# -- versions ----------------------------------------------------------------------------------


def test_version_is_stable_and_changes_with_any_file(tmp_path: Path, write_lexicon: WriteLexicon) -> None:
    write_lexicon(tmp_path, {"a.tsv": "赌场\tgambling\thigh\tsubstring\n", "allow.tsv": "测试\n"})
    v1 = Lexicon.load(tmp_path).version
    assert v1 == Lexicon.load(tmp_path).version
    assert len(v1) == 12

    (tmp_path / "a.tsv").write_text("赌场\tgambling\tmedium\tsubstring\n", encoding="utf-8")
    v2 = Lexicon.load(tmp_path).version
    assert v2 != v1

    (tmp_path / "allow.tsv").write_text("测试\n测验\n", encoding="utf-8")
    v3 = Lexicon.load(tmp_path).version
    assert v3 not in (v1, v2)

    # Same bytes under another name is another lexicon (the category file moved).
    (tmp_path / "a.tsv").rename(tmp_path / "b.tsv")
    assert Lexicon.load(tmp_path).version != v3


# -- import ------------------------------------------------------------------------------------


def test_import_skips_short_terms_duplicates_and_comments() -> None:
    text = "代开发票\n# a comment\n\n票\n代开发票\n发票代开\tsome\tnote\n  赌场  \n"
    report = import_terms(text, category="fraud", severity="medium", mode="substring", name="words.txt")
    assert [(t.term, t.where) for t in report.terms] == [
        ("代开发票", "words.txt:1"),
        ("发票代开", "words.txt:6"),
        ("赌场", "words.txt:7"),
    ]
    assert all((t.category, t.severity, t.mode) == ("fraud", "medium", "substring") for t in report.terms)
    assert report.skipped == ((4, "'票' is shorter than 2 characters"), (5, "'代开发票' is a duplicate"))


def test_import_min_length_and_existing_terms() -> None:
    report = import_terms(
        "赌场\n百家乐\n老虎机\n",
        category="gambling",
        severity="high",
        mode="word",
        name="g.txt",
        min_length=3,
        existing=frozenset({"老虎机"}),
    )
    assert [t.term for t in report.terms] == ["百家乐"]
    assert [lineno for lineno, _ in report.skipped] == [1, 3]


def test_import_lines_round_trip_through_the_parser() -> None:
    report = import_terms("代开发票\n发票代开\n", category="fraud", severity="low", mode="exact", name="w.txt")
    raw = "".join(format_line(t) + "\n" for t in report.terms).encode()
    parsed = list(parse_lines(raw, "fraud.tsv", is_allow=False))
    assert [(t.term, t.category, t.severity, t.mode) for t in parsed] == [
        ("代开发票", "fraud", "low", "exact"),
        ("发票代开", "fraud", "low", "exact"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"severity": "severe"}, "--severity"),
        ({"mode": "fuzzy"}, "--mode"),
        ({"category": ""}, "--category"),
        ({"category": "a/b"}, "--category"),
        ({"category": "allow"}, "--category"),
    ],
)
def test_import_rejects_bad_options(kwargs: dict[str, str], where: str) -> None:
    args = {"category": "fraud", "severity": "medium", "mode": "substring"} | kwargs
    with pytest.raises(LexiconError) as info:
        import_terms("代开发票\n", name="w.txt", **args)  # type: ignore[arg-type]
    assert info.value.where == where


# -- lint --------------------------------------------------------------------------------------


@pytest.fixture
def lint_files(tmp_path: Path, write_lexicon: WriteLexicon) -> LintFiles:
    """Lint a lexicon built from ``{file: content}`` against ham; returns (code, where) pairs."""

    def run(files: dict[str, str], ham: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        stage = LexiconStage(Lexicon.load(write_lexicon(tmp_path, files)))
        return [(f.code, f.where) for f in lint(stage, ham)]

    return run


def test_lint_clean_lexicon_has_no_findings(lint_files: LintFiles) -> None:
    files = {"f.tsv": "代开发票\tfraud\tmedium\tsubstring\n赌场\tgambling\thigh\tsubstring\n", "allow.tsv": "测试\n"}
    assert lint_files(files, [("ham:1", "【示例】您的订单已发货")]) == []


def test_lint_duplicates_once_normalized(lint_files: LintFiles, tmp_path: Path) -> None:
    files = {
        "f.tsv": "代开发票\tfraud\tmedium\tsubstring\n代 開 發 票\tfraud\thigh\tsubstring\n",
        # Same key in another category or mode is not a duplicate.
        "g.tsv": "代开发票\tillegal\tmedium\tsubstring\n代开发票\tfraud\tmedium\tword\n",
    }
    assert lint_files(files) == [("lexicon.duplicate", f"{tmp_path / 'f.tsv'}:2")]


def test_lint_allow_conflict(lint_files: LintFiles, tmp_path: Path) -> None:
    files = {"f.tsv": "测试药物\tdrugs\tmedium\tsubstring\n赌场\tgambling\thigh\tsubstring\n", "allow.tsv": "测试\n"}
    assert lint_files(files) == [("lexicon.allow_conflict", f"{tmp_path / 'f.tsv'}:1")]


def test_lint_fires_on_ham(lint_files: LintFiles, tmp_path: Path) -> None:
    files = {"f.tsv": "赌场\tgambling\thigh\tsubstring\n发货\tfraud\tlow\tsubstring\n"}
    findings = lint_files(files, [("ham.jsonl:1", "【示例】您的订单已发货"), ("ham.jsonl:2", "谢谢")])
    assert findings == [("lexicon.fires_on_ham", f"{tmp_path / 'f.tsv'}:2")]
