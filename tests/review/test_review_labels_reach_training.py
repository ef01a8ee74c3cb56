"""Reviewer decisions reach training: ``smsguard train --export-reviews`` writes the decided items in SQL,
``--with-reviews`` (no file) trains on them, and the promotion gate reports the effect on the dev split."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from smsguard.engine import PROJECT_ROOT
from smsguard.training.data import DATA_DIR
from smsguard.training.reviews import JsonlReviewSource, sql_source


def _decide(env, users, texts: dict[str, str]) -> None:
    for text, action in texts.items():
        item = env.submit(text)
        env.service.claim(users["rev1"], item)
        env.service.decide(
            users["rev1"],
            item,
            version=1,
            action=action,
            **({"reason": "scam", "category": "fraud"} if action == "reject" else {}),
        )


def test_export_writes_the_decided_items_in_sql(backend, env, users, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    texts = {f"【示例商城】您的订单{tag}已发货 贷款": "approve", f"无抵押贷款{tag}，当天到账，加微信": "reject"}
    _decide(env, users, texts)
    out = tmp_path / "labels.jsonl"
    r = subprocess.run(
        [sys.executable, "-m", "smsguard", "train", "--export-reviews", str(out)],
        env=backend.env(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "reviewer label(s)" in r.stdout, r.stderr
    exported = list(JsonlReviewSource(out).labels())
    assert exported == list(sql_source(env.db).labels())  # the file reads back as what SQL holds
    mine = {t: label for t, label in exported if tag in t}
    assert mine == {t: int(a == "reject") for t, a in texts.items()}


def _tenant_name(db, tenant_id: int) -> str:
    from sqlalchemy import text

    with db.connect() as conn:
        return conn.execute(text("SELECT name FROM tenants WHERE id = :i"), {"i": tenant_id}).scalar_one()


def test_review_export_labels_per_tenant_and_to_stdout(backend, make_env, users, tmp_path: Path) -> None:
    import json

    tag = uuid.uuid4().hex[:6]
    a, b = make_env(), make_env()
    mine = {f"【示例商城】您的快递{tag}已到 贷款": "approve", f"低息贷款{tag}，秒到账，加QQ": "reject"}
    _decide(a, users, mine)
    _decide(b, users, {f"其他租户的贷款{tag}": "reject"})

    def export(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "smsguard", "review", "export-labels", *args],
            env=backend.env(),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = tmp_path / "a.jsonl"
    r = export("--tenant", _tenant_name(a.db, a.tenant_id), "--out", str(out))
    assert r.returncode == 0 and "wrote 2 reviewer label(s)" in r.stdout, r.stdout + r.stderr
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [(x["text"], x["label"]) for x in rows] == [(t, int(d == "reject")) for t, d in mine.items()]
    assert rows[1]["category"] == "fraud"  # the reviewer's category travels with the label
    assert list(JsonlReviewSource(out).labels()) == [(x["text"], x["label"]) for x in rows]  # train reads it back
    r = export()  # every tenant, to stdout; the count goes to stderr so stdout stays JSON lines
    assert r.returncode == 0, r.stderr
    texts = [json.loads(line)["text"] for line in r.stdout.splitlines()]
    assert set(mine) | {f"其他租户的贷款{tag}"} <= set(texts)
    assert "reviewer label(s) to stdout" in r.stderr
    r = export("--tenant", f"nobody-{tag}")
    assert r.returncode == 2 and "tenant.not_found" in r.stderr and "Traceback" not in r.stderr, r.stderr


# ../shared/data next to the repository (a git worktree sits one level deeper)
DATA = next((d for d in (DATA_DIR, PROJECT_ROOT.parent.parent / "shared" / "data") if (d / "fbs_sms").is_dir()), None)


@pytest.mark.slow
@pytest.mark.skipif(DATA is None, reason="needs the shared training data")
def test_training_with_reviews_from_sql_reports_the_gate(env, users, tmp_path: Path) -> None:
    from smsguard.training.run import Options, run

    tag = uuid.uuid4().hex[:6]
    texts = {f"【示例商城】您的订单{tag}-{i}号已发货，请注意查收 贷款": "approve" for i in range(15)}
    texts |= {f"澳门娱乐城{tag}首充送{i}0%，贷款日提款无上限，加微信领取": "reject" for i in range(15)}
    _decide(env, users, texts)
    out = tmp_path / "models"
    out.mkdir()
    shutil.copyfile(PROJECT_ROOT / "models" / "classifier.onnx", out / "classifier.onnx")  # the model to beat
    lines: list[str] = []
    result = run(
        Options(
            data_dir=DATA,
            out_dir=out,
            limit=600,
            baseline=False,
            tolerance=1.0,
            reviews=sql_source(env.db),
            reviews_name="review items in SQL",
        ),
        log=lines.append,
    )
    added = next(line for line in lines if line.startswith("reviews:"))
    assert int(added.split()[1]) >= 30 or "dropped" in added  # every decided item is read (some may be dev copies)
    assert result.comparison, lines  # the gate compared old and new on the dev split, metric by metric
    assert {"metric", "old", "new", "delta"} <= set(result.comparison[0])
    assert any(line.lstrip().startswith(result.comparison[0]["metric"]) for line in lines)
    # and what the review labels alone changed: the same training without them, on the same dev split
    effect = {r["metric"]: r for r in result.review_effect}
    assert {"roc_auc", "f1@review", "crossings@review", "crossings@block"} <= set(effect), lines
    assert effect["f1@review"]["delta"] == pytest.approx(effect["f1@review"]["with"] - effect["f1@review"]["without"])
    header = next(i for i, line in enumerate(lines) if line.startswith("gate: effect of the"))
    assert "review label(s) on the dev split" in lines[header] and "without" in lines[header + 1], lines
    assert result.promoted  # tolerance 1: promoted whatever the figures, so the card is written
    assert "Effect of the review labels alone" in (out / "MODEL_CARD.md").read_text("utf-8")
