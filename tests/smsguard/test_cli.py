"""The real ``smsguard`` console script, run as a subprocess (``python -m smsguard``).

SMSGUARD_DATA_DIR points at ``tmp_path`` so imports never touch the repository, and SMSGUARD_MODEL at
a missing file so the verdicts do not depend on whichever classifier is checked out. The shipped
lexicons are loaded as usual; assertions only rely on terms the tests import themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smsguard.engine import PROJECT_ROOT


def run(
    args: list[str], env: dict[str, str], stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "smsguard", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd or PROJECT_ROOT,
        timeout=120,
        check=False,
    )


def verdicts(proc: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("SMSGUARD_")}
    e["SMSGUARD_DATA_DIR"] = str(tmp_path / "data")
    e["SMSGUARD_MODEL"] = str(tmp_path / "no-model.onnx")
    e["PYTHONIOENCODING"] = "utf-8"
    return e


INPUT = "\n".join(
    [
        '{"id": "a", "text": "【示例商城】您的订单已发货"}',
        "【示例商城】新品上市，全场5折",
        '{"id": 3, "text": "您的验证码是123456", "kind": "verification", "signature": "示例银行"}',
        '{"text": "【某商城】您好", "tenant": "demo"}',
        "   【示例商城】带空格的纯文本行  ",
    ]
).encode()


def _check_input_verdicts(out: list[dict[str, Any]]) -> None:
    assert [v["id"] for v in out] == ["a", None, 3, None, None]
    assert all(v["decision"] in ("pass", "review", "block") for v in out)
    assert all(0 <= v["score"] <= 1 for v in out)
    assert all(set(v["versions"]) == {"policy", "lexicon", "model"} for v in out)
    assert all(v["versions"]["model"] == "none" for v in out)
    # Each line was screened as itself, in order.
    assert "marketing.optout_missing" in [r["code"] for r in out[1]["reasons"]]
    assert out[2]["kind"] == "verification" and out[2]["kind_inferred"] is False
    assert "signature.unregistered" in [r["code"] for r in out[3]["reasons"]]
    assert out[4]["length"] == len("   【示例商城】带空格的纯文本行  ")


def test_screen_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(INPUT + b"\n")
    proc = run(["screen", str(path)], env)
    assert proc.returncode == 0, proc.stderr
    out = verdicts(proc)
    assert len(out) == 5
    _check_input_verdicts(out)


def test_screen_stdin_matches_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(INPUT)
    from_file = run(["screen", str(path)], env)
    from_stdin = run(["screen"], env, stdin=INPUT)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout
    _check_input_verdicts(verdicts(from_stdin))


def test_screen_crlf_and_bom(env: dict[str, str]) -> None:
    proc = run(["screen"], env, stdin="\ufeff【示例商城】您好\r\n【示例商城】再见\r\n".encode())
    assert proc.returncode == 0, proc.stderr
    out = verdicts(proc)
    assert [v["length"] for v in out] == [len("【示例商城】您好"), len("【示例商城】再见")]
    assert [v["reasons"] for v in out] == [[], []]


def test_screen_order_across_batches(env: dict[str, str]) -> None:
    lines = [json.dumps({"id": i, "text": f"【示例商城】第{i}号订单已发货"}, ensure_ascii=False) for i in range(1100)]
    proc = run(["screen"], env, stdin="\n".join(lines).encode())
    assert proc.returncode == 0, proc.stderr
    assert [v["id"] for v in verdicts(proc)] == list(range(1100))


def test_content_only(env: dict[str, str]) -> None:
    text = "您的订单已发货".encode()
    full = verdicts(run(["screen"], env, stdin=text))
    content = verdicts(run(["screen", "--content-only"], env, stdin=text))
    assert [r["code"] for r in full[0]["reasons"]] == ["signature.missing"]
    assert content[0]["reasons"] == []
    assert content[0]["decision"] == "pass"


@pytest.mark.parametrize(
    ("bad_line", "words"),
    [
        (b'{"id": 1, "text": "unterminated', "invalid JSON"),
        (b'{"id": 1, "text": 5}', "$.text"),
        (b'{"id": 1, "txt": "typo"}', "txt"),
        (b'{"text": "x", "kind": "promo"}', "$.kind"),
        (b"", "text must not be empty"),
        (b"   ", "text must not be empty"),
        ("【示例商城】您好".encode("gbk"), "not UTF-8"),
    ],
)
def test_malformed_line_stops_with_its_number(env: dict[str, str], bad_line: bytes, words: str) -> None:
    good = '{"id": "first", "text": "【示例商城】您好"}\n【示例商城】第二行\n'.encode()
    proc = run(["screen"], env, stdin=good + bad_line + "\n【示例商城】第四行\n".encode())
    assert proc.returncode == 2
    stderr = proc.stderr.decode("utf-8")
    assert "line 3" in stderr
    assert words in stderr
    out = verdicts(proc)
    assert [v["id"] for v in out] == ["first", None]  # earlier lines answered, nothing after
    assert out[1]["length"] == len("【示例商城】第二行")


def test_missing_input_file(tmp_path: Path, env: dict[str, str]) -> None:
    proc = run(["screen", str(tmp_path / "nope.txt")], env)
    assert proc.returncode != 0
    assert proc.stdout == b""


# -- policy ------------------------------------------------------------------------------------


def test_policy_check_ok(env: dict[str, str]) -> None:
    proc = run(["policy", "check"], env)
    assert proc.returncode == 0, proc.stderr
    assert b": ok (version " in proc.stdout


def test_policy_check_broken(tmp_path: Path, env: dict[str, str]) -> None:
    broken = tmp_path / "policy.yaml"
    text = (PROJECT_ROOT / "policy.yaml").read_text("utf-8")
    broken.write_text(text.replace("block_at: 0.9", "block_at: 1.9"), encoding="utf-8")
    proc = run(["policy", "check", str(broken)], env)
    assert proc.returncode == 2
    assert "policy.yaml: $.thresholds.block_at" in proc.stderr.decode("utf-8")
    assert proc.stdout == b""


def test_policy_env_var_is_used(tmp_path: Path, env: dict[str, str]) -> None:
    broken = tmp_path / "mine.yaml"
    broken.write_text('version: "1"\nthresholdz: {}\n', encoding="utf-8")
    proc = run(["policy", "check"], {**env, "SMSGUARD_POLICY": str(broken)})
    assert proc.returncode == 2
    assert "mine.yaml: $" in proc.stderr.decode("utf-8")


# -- lexicon -----------------------------------------------------------------------------------


def test_lexicon_import_then_screen(tmp_path: Path, env: dict[str, str]) -> None:
    words = tmp_path / "words.txt"
    words.write_text("斑马飞艇\n# comment\n斑\n河马潜艇\t带注释\n斑马飞艇\n", encoding="utf-8")
    proc = run(["lexicon", "import", str(words), "--category", "zoo", "--severity", "high"], env)
    assert proc.returncode == 0, proc.stderr
    target = tmp_path / "data" / "lexicons" / "zoo.tsv"
    assert f"imported 2 terms into {target} (2 skipped)" in proc.stdout.decode("utf-8")
    stderr = proc.stderr.decode("utf-8")
    assert f"{words}:3: skipped" in stderr and f"{words}:5: skipped" in stderr  # outside the project: absolute
    assert target.read_text("utf-8").splitlines()[1:] == [
        "斑马飞艇\tzoo\thigh\tsubstring",
        "河马潜艇\tzoo\thigh\tsubstring",
    ]

    # Importing again adds nothing (the terms exist) and keeps the file valid.
    again = run(["lexicon", "import", str(words), "--category", "zoo"], env)
    assert again.returncode == 0, again.stderr
    assert "imported 0 terms" in again.stdout.decode("utf-8")

    screened = run(["screen"], env, stdin="【示例商城】今天有斑 马 飛 艇表演\n".encode())
    assert screened.returncode == 0, screened.stderr
    (verdict,) = verdicts(screened)
    (reason,) = [r for r in verdict["reasons"] if r["category"] == "zoo"]
    assert (reason["code"], reason["term"], reason["source"]) == ("lexicon.zoo", "斑马飞艇", "lexicon")
    assert "【示例商城】今天有斑 马 飛 艇表演"[reason["start"] : reason["end"]] == "斑 马 飛 艇"
    assert verdict["decision"] == "block"  # default_category: high → block


def test_lexicon_import_rejects_non_utf8(tmp_path: Path, env: dict[str, str]) -> None:
    words = tmp_path / "gbk.txt"
    words.write_bytes("斑马飞艇\n".encode("gbk"))
    proc = run(["lexicon", "import", str(words), "--category", "zoo"], env)
    assert proc.returncode == 2
    assert "not UTF-8" in proc.stderr.decode("utf-8")
    assert not (tmp_path / "data" / "lexicons" / "zoo.tsv").exists()


def test_lexicon_check_findings_exit_1(tmp_path: Path, env: dict[str, str]) -> None:
    user = tmp_path / "data" / "lexicons"
    user.mkdir(parents=True)
    (user / "zoo.tsv").write_text(
        "斑马飞艇\tzoo\thigh\tsubstring\n斑 马 飛 艇\tzoo\tlow\tsubstring\n", encoding="utf-8"
    )
    ham = tmp_path / "ham.jsonl"
    ham.write_text('{"text": "【示例商城】斑马飞艇表演今晚开始"}\n', encoding="utf-8")
    proc = run(["lexicon", "check", "--ham", str(ham)], env)
    assert proc.returncode == 1
    out = proc.stdout.decode("utf-8")
    assert f"{user / 'zoo.tsv'}:2: lexicon.duplicate" in out  # the file's path, not just "zoo.tsv:2"
    assert "lexicon.fires_on_ham" in out and f"{ham}:1" in out
    assert "1 ham messages checked" in out


def test_broken_user_lexicon_is_an_error_naming_file_and_line(tmp_path: Path, env: dict[str, str]) -> None:
    user = tmp_path / "data" / "lexicons"
    user.mkdir(parents=True)
    (user / "zoo.tsv").write_text("斑马飞艇\tzoo\tsevere\tsubstring\n", encoding="utf-8")
    proc = run(["screen"], env, stdin="【示例商城】您好\n".encode())
    assert proc.returncode == 2
    assert f"{user / 'zoo.tsv'}:1" in proc.stderr.decode("utf-8")
    assert proc.stdout == b""
