"""Reading the corpora and making the seeded, grouped dev split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from smsguard.core import InputError
from smsguard.engine._features import prepare
from smsguard.training.data import DATA_DIR, FBS, MUDOU, UCI, ZH80W, Example, group_key, load_corpus, split


@pytest.mark.shared_data
def test_the_shared_data_is_where_the_project_expects_it() -> None:
    # CI has ../shared/data next to the repository: there a missing corpus fails (see the shared_data marker)
    for name in (ZH80W, FBS, MUDOU, UCI):
        assert (DATA_DIR / name).is_file(), f"missing corpus {DATA_DIR / name}"


def _write(root: Path, name: str, lines: list[str]) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_labels_and_fbs_categories(tmp_path: Path) -> None:
    _write(tmp_path, ZH80W, ["0\t今天天气不错", "1\t全场xx折，详询xxxxxxxxxxx"])
    _write(tmp_path, FBS, ["AD:Loan\t无 抵押 贷款 详询 CELLPHONE", "FR:Phishing(Bank)\t您 的 BANK 账户 异常 登录 URL"])
    _write(tmp_path, UCI, ["ham\tok see you", "spam\tWIN a prize"])
    assert [(e.label, e.source) for e in load_corpus(ZH80W, tmp_path)] == [(0, "zh_sms80w"), (1, "zh_sms80w")]
    fbs = load_corpus(FBS, tmp_path)
    assert [(e.label, e.category, e.fbs_category) for e in fbs] == [
        (1, "loan", "AD:Loan"),
        (1, "phishing", "FR:Phishing(Bank)"),
    ]
    assert fbs[0].as_published == "无 抵押 贷款 详询 CELLPHONE"  # the baseline reads the text as published
    assert "CELLPHONE" not in fbs[0].text
    assert [e.label for e in load_corpus(UCI, tmp_path)] == [0, 1]


def test_bad_rows_name_their_line(tmp_path: Path) -> None:
    _write(tmp_path, ZH80W, ["0\tfine", "2\tbad label"])
    with pytest.raises(InputError, match="unknown label") as e:
        load_corpus(ZH80W, tmp_path)
    assert e.value.where and e.value.where.endswith(":2")
    _write(tmp_path, MUDOU, ["no tab here"])
    with pytest.raises(InputError, match="two tab-separated"):
        load_corpus(MUDOU, tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_corpus(FBS, tmp_path)


def _examples() -> list[Example]:
    rows = []
    for i in range(400):
        word = chr(0x4E00 + 3 * i) + chr(0x5000 + 7 * i)  # distinct characters: digits are not part of the key
        rows.append(Example(f"新闻{word}讲的是城市建设的故事", 0, "a"))
        rows.append(Example(f"全场优惠{word}，详询客服，回T退订", 1, "a"))
    rows.append(Example("重复的句子", 0, "b"))
    rows.append(Example("重复的句子！！", 0, "b"))  # a near-copy: same group
    rows.append(Example("两边都有", 0, "b"))
    rows.append(Example("两边都有", 1, "c"))  # labelled both ways: dropped
    return rows


def test_split_is_seeded_grouped_and_stratified() -> None:
    rows = _examples()
    a = split(rows, dev_fraction=0.25, seed=1)
    b = split(rows, dev_fraction=0.25, seed=1)
    c = split(rows, dev_fraction=0.25, seed=2)
    assert [e.text for e in a.dev] == [e.text for e in b.dev]
    assert [e.text for e in a.dev] != [e.text for e in c.dev]
    train_keys = {group_key(e.text) for e in a.train}
    assert not train_keys & {group_key(e.text) for e in a.dev}, "a near-copy on both sides leaks dev into training"
    assert a.dropped_conflicts == 1
    assert "两边都有" not in {e.text for e in a.train + a.dev}
    texts = [e.text for e in a.train + a.dev]
    assert texts.count("重复的句子") + texts.count("重复的句子！！") == 1
    dev_labels = Counter(e.label for e in a.dev if e.source == "a")
    total = Counter(e.label for e in a.train + a.dev if e.source == "a")
    for label in (0, 1):
        assert abs(dev_labels[label] / total[label] - 0.25) < 0.02
    assert a.dev_prepared == [prepare(e.text) for e in a.dev]
    assert a.train_prepared == [prepare(e.text) for e in a.train]
