"""The training corpora (``../shared/data``), read in place, and the seeded train/dev split.

Each row becomes an :class:`Example` with a binary label (1 = spam/ad/fraud, 0 = ham) and, for
the FBS corpus, its bad-content category. The corpora are never copied into the repository; the
model card records the SHA-256 of every file read so a run can be reproduced.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from smsguard.core import InputError, get_settings
from smsguard.engine import normalizer
from smsguard.engine._features import prepare

DATA_DIR = get_settings().shared_data_dir  # SMSGUARD_SHARED_DATA, default ../shared/data

ZH80W = "zh_sms80w/zh_sms80w_dedup_train.tsv"
FBS = "fbs_sms/fbs_sms_train.tsv"
MUDOU = "mudou_spam/train.tsv"
UCI = "uci_sms_spam/sms_spam.tsv"
REVIEWS = "reviews"  # source name of items that come from reviewer decisions

# FBS categories (Zhang et al., CCS'20) → the category label a verdict shows. The names follow
# policy.yaml's categories where one exists (loan, fraud, gambling, porn, illegal, politics).
FBS_CATEGORIES = {
    "AD:Loan": "loan",
    "AD:Network_service": "ad",
    "AD:Other": "ad",
    "AD:Real_estate": "ad",
    "AD:Retail": "ad",
    "FR:Financial": "fraud",
    "FR:Other": "fraud",
    "FR:Phishing(Bank)": "phishing",
    "FR:Phishing(Other)": "phishing",
    "IL:Escort_service": "porn",
    "IL:Fake_ID_and_invoice": "illegal",
    "IL:Gambling": "gambling",
    "IL:Political_propaganda": "politics",
    "Other": "other",
}

# The FBS publisher replaced contacts and numbers by placeholders. Each becomes text that
# prepare() reads exactly as it reads the real thing in the other corpora (masked digits, a
# link); names and places are dropped rather than invented, and BANK becomes the generic 银行.
_FBS_PLACEHOLDER = re.compile(r"CELLPHONE|PHONE|HOTLINE|WECHAT|QQ|DIGIT|URL[a-z0-9]*|NAME|PLACE|BANK")
_FBS_REPLACEMENT = {
    "CELLPHONE": " xxxxxxxxxxx ",
    "PHONE": " xxxx-xxxxxxxx ",
    "HOTLINE": " xxx-xxx-xxxx ",
    "WECHAT": " 微信xxxxxxxx ",
    "QQ": " qq xxxxxxxxx ",
    "DIGIT": " xx ",
    "NAME": " ",
    "PLACE": " ",
    "BANK": " 银行 ",
}


@dataclass(frozen=True, slots=True)
class Example:
    text: str  # what the model reads (FBS: placeholders turned into realistic text)
    label: int  # 1 = spam / bad content, 0 = ham
    source: str
    category: str | None = None  # coarse bad-content category (FBS only)
    fbs_category: str | None = None  # the original FBS category
    raw: str | None = None  # the corpus text as published, when it differs from ``text`` (FBS)

    @property
    def as_published(self) -> str:
        return self.raw if self.raw is not None else self.text


def fbs_text(segmented: str) -> str:
    """An FBS message with its placeholders turned into what prepare() sees in real messages."""

    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        return " http://url.cn/x " if word.startswith("URL") else _FBS_REPLACEMENT[word]

    return _FBS_PLACEHOLDER.sub(repl, segmented)


def _rows(path: Path) -> Iterable[tuple[int, str, str]]:
    if not path.is_file():
        raise InputError(f"training corpus not found (../shared/data, or SMSGUARD_SHARED_DATA): {path}")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            first, sep, text = line.rstrip("\n").partition("\t")
            if not sep:
                raise InputError("expected two tab-separated fields", where=f"{path}:{lineno}")
            yield lineno, first, text


def load_corpus(name: str, data_dir: Path = DATA_DIR) -> list[Example]:
    path = data_dir / name
    out: list[Example] = []
    source = name.split("/", 1)[0]
    for lineno, first, text in _rows(path):
        if name == FBS:
            if first not in FBS_CATEGORIES:
                raise InputError(f"unknown FBS category {first!r}", where=f"{path}:{lineno}")
            out.append(Example(fbs_text(text), 1, source, FBS_CATEGORIES[first], first, raw=text))
        elif name == UCI:
            if first not in ("ham", "spam"):
                raise InputError(f"unknown label {first!r}", where=f"{path}:{lineno}")
            out.append(Example(text, int(first == "spam"), source))
        else:
            if first not in ("0", "1"):
                raise InputError(f"unknown label {first!r}", where=f"{path}:{lineno}")
            out.append(Example(text, int(first), source))
    return out


FBS_PUBLISHED = "fbs_sms_published"  # source name of the as-published copies of FBS training rows


def published_copies(train: Iterable[Example]) -> list[Example]:
    """FBS training rows once more, as published (word spaces, ``CELLPHONE``/``URL`` placeholders).

    The model is trained on FBS turned into realistic text, but an FBS message may also be screened
    as published (that is how the corpus and its held-out part are distributed); without these
    copies the placeholders are unknown words to the model and its FBS recall falls by a tenth.
    """
    return [
        Example(e.raw, 1, FBS_PUBLISHED, e.category, e.fbs_category)
        for e in train
        if e.source == "fbs_sms" and e.raw is not None
    ]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_NOT_KEY = re.compile(r"[0-9x]+")


def group_key(text: str) -> str:
    """Near-copy key: the engine's folded text (no spaces, punctuation, emoji) without digits or masks."""
    return _NOT_KEY.sub("", normalizer().fold(text))


@dataclass(frozen=True, slots=True)
class Split:
    train: list[Example]
    dev: list[Example]
    train_prepared: list[str]
    dev_prepared: list[str]
    dropped_conflicts: int  # groups (near-copies) the corpora label both ways: dropped
    dropped_duplicates: int  # rows that repeat a group already kept


def split(examples: Sequence[Example], *, dev_fraction: float, seed: int) -> Split:
    """A seeded dev split, stratified by source and label (FBS: by category), grouped by near-copy.

    Texts that differ only in case, width, spaces, punctuation, emoji or digits share a group key
    and land on one side, so the dev split never holds a near-copy of a training message. Within
    each group one text is kept per side; a group the corpora label both ways is dropped.
    """
    prepared = [prepare(e.text) for e in examples]
    keys = [group_key(e.text) for e in examples]
    labels: dict[str, set[int]] = defaultdict(set)
    first: dict[str, int] = {}
    for i, (e, k) in enumerate(zip(examples, keys, strict=True)):
        labels[k].add(e.label)
        first.setdefault(k, i)
    conflicts = {k for k, ls in labels.items() if len(ls) > 1}
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for k, i in first.items():  # dicts keep insertion order: groups in file order
        if k in conflicts:
            continue
        e = examples[i]
        strata[(e.source, e.fbs_category or str(e.label))].append(k)
    rng = random.Random(seed)
    dev_groups: set[str] = set()
    for key in sorted(strata):
        groups = strata[key]
        order = list(range(len(groups)))
        rng.shuffle(order)
        dev_groups.update(groups[j] for j in order[: round(dev_fraction * len(groups))])
    train: list[Example] = []
    dev: list[Example] = []
    train_p: list[str] = []
    dev_p: list[str] = []
    seen: set[str] = set()
    duplicates = 0
    for e, p, k in zip(examples, prepared, keys, strict=True):
        if k in conflicts:
            continue
        if k in seen:
            duplicates += 1
            continue
        seen.add(k)
        if k in dev_groups:
            dev.append(e)
            dev_p.append(p)
        else:
            train.append(e)
            train_p.append(p)
    return Split(train, dev, train_p, dev_p, len(conflicts), duplicates)
