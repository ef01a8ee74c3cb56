"""Deterministic replay from the content-addressed version store, and shadow mode (``policy diff`` and the
reload gate), through a real app on both backends."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from smsguard.audit import VersionMissing, replay, shadow_diff
from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig

LEXICON = {"gambling.tsv": "赌场\tgambling\thigh\tsubstring\n", "fraud.tsv": "代开发票\tfraud\tmedium\tsubstring\n"}
TEXTS = [
    "【示例商城】赌场开业，欢迎光临",
    "【示例商城】您好，您的订单已发货",
    "【示例商城】您好，会员日全场八折，回T退订",
    "【示例商城】代开发票，联系13812345678",
    "您的验证码是123456，5分钟内有效",
]


def _files(root: Path, model: bool) -> EngineConfig:
    shutil.copyfile(PROJECT_ROOT / "policy.yaml", root / "policy.yaml")
    (root / "lex").mkdir()
    for name, body in LEXICON.items():
        (root / "lex" / name).write_text(body, "utf-8")
    return EngineConfig(
        policy_path=root / "policy.yaml",
        lexicon_dirs=(root / "lex",),
        model_path=PROJECT_ROOT / "models" / "classifier.onnx" if model else None,
    )


@dataclasses.dataclass
class App:
    client: TestClient
    root: Path
    engine: Engine


def _start(backend, tmp_path_factory, *, model: bool, **settings: object) -> Iterator[App]:
    from smsguard.api import create_app

    root = tmp_path_factory.mktemp("replay")
    engine = Engine(_files(root, model))
    with TestClient(create_app(engine, settings=backend.settings(**settings))) as c:
        yield App(c, root, engine)


@pytest.fixture(scope="module")
def app(backend, tmp_path_factory) -> Iterator[App]:
    yield from _start(backend, tmp_path_factory, model=True)


def _headers(backend, role: str | None = None, db=None) -> tuple[str, dict[str, str]]:
    from smsguard.storage import create_key, create_tenant

    db = db or backend.db
    t = create_tenant(db, f"rp-{uuid.uuid4().hex[:10]}")
    key, _ = create_key(db, t.name, role=role)
    return t.name, {"Authorization": f"Bearer {key}"}


def _screen(client: TestClient, headers: dict[str, str], messages: list[dict], content_only: bool = False) -> list:
    r = client.post("/v1/screen/batch", headers=headers, json={"messages": messages, "content_only": content_only})
    assert r.status_code == 200, r.text
    return r.json()["verdicts"]


def test_replay_reproduces_stored_verdicts_byte_for_byte(backend, app) -> None:
    _, headers = _headers(backend)
    verdicts = _screen(app.client, headers, [{"text": t, "id": i} for i, t in enumerate(TEXTS)])
    verdicts += _screen(
        app.client, headers, [{"text": TEXTS[4], "kind": "verification", "id": "v"}, {"text": TEXTS[1]}]
    )  # the second one is a cache hit
    verdicts += _screen(app.client, headers, [{"text": TEXTS[2], "kind": "marketing"}], content_only=True)
    assert verdicts[-2]["cached"] is True and verdicts[0]["versions"]["model"] != "none"
    for v in verdicts:
        result = replay(backend.db, v["verdict_id"])  # rebuilt from the stored blobs, not from the files
        assert result.identical, result.differences
        assert result.request_exact
    assert result.content_only
    # the CLI, as an operator runs it
    env = backend.env()
    r = subprocess.run(
        [sys.executable, "-m", "smsguard", "audit", "replay", verdicts[3]["verdict_id"]],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "IDENTICAL" in r.stdout, r.stdout + r.stderr


def test_replay_names_what_differs(backend, app) -> None:
    _, headers = _headers(backend)
    [v] = _screen(app.client, headers, [{"text": TEXTS[0]}])
    with backend.db.begin() as conn:
        conn.execute(
            text(
                'UPDATE verdicts SET verdict = replace(verdict, \'"decision":"block"\', '
                '\'"decision":"pass"\') WHERE id = :i'
            ),
            {"i": v["verdict_id"]},
        )
    result = replay(backend.db, v["verdict_id"])
    assert not result.identical
    assert any(d.startswith('$.decision: "pass" stored, "block" replayed') for d in result.differences), (
        result.differences
    )
    r = subprocess.run(
        [sys.executable, "-m", "smsguard", "audit", "replay", v["verdict_id"]],
        env=backend.env(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "DIFFERS" in r.stdout and "$.decision" in r.stdout, r.stdout + r.stderr


def test_replay_says_which_version_was_never_recorded(backend, app) -> None:
    _, headers = _headers(backend)
    [v] = _screen(app.client, headers, [{"text": TEXTS[1]}])
    with backend.db.begin() as conn:
        saved = conn.execute(
            text(
                "SELECT kind, version, sha256, first_seen FROM audit_versions WHERE kind = 'lexicon' AND version = :v"
            ),
            {"v": v["versions"]["lexicon"]},
        ).one()
        conn.execute(text("DELETE FROM audit_versions WHERE kind = 'lexicon' AND version = :v"), {"v": saved.version})
    try:
        with pytest.raises(VersionMissing) as e:
            replay(backend.db, v["verdict_id"])
        assert e.value.where == f"lexicon:{saved.version}"
    finally:
        with backend.db.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_versions (kind, version, sha256, first_seen) "
                    "VALUES (:kind, :version, :sha256, :first_seen)"
                ),
                saved._asdict(),
            )


def test_shadow_diff_reports_every_changed_decision(backend, app, tmp_path) -> None:
    since = datetime.now(UTC)
    tenant, headers = _headers(backend)
    verdicts = _screen(app.client, headers, [{"text": t} for t in TEXTS])
    same = shadow_diff(backend.db, app.engine, since=since)
    assert (same.replayed, same.changed) == (len(TEXTS), 0)
    lex = tmp_path / "candidate"
    lex.mkdir()
    for name, body in LEXICON.items():
        (lex / name).write_text(body, "utf-8")
    (lex / "gambling.tsv").write_text(LEXICON["gambling.tsv"] + "八折\tgambling\thigh\tsubstring\n", "utf-8")
    candidate = Engine(dataclasses.replace(app.engine.config, lexicon_dirs=(lex,)))
    report = shadow_diff(backend.db, candidate, since=since)
    assert report.changed == 1 and report.flip_rate == pytest.approx(1 / len(TEXTS))
    # only the newest N (what the reload gate reads): the change is in the third newest
    newest2 = shadow_diff(backend.db, candidate, since=since, newest=2)
    assert (newest2.replayed, newest2.changed) == (2, 0)
    newest3 = shadow_diff(backend.db, candidate, since=since, newest=3)
    assert (newest3.replayed, newest3.changed) == (3, 1)
    [change] = report.changes
    assert (change.verdict_id, change.tenant, change.after) == (verdicts[2]["verdict_id"], tenant, "block")
    assert (change.category, change.code) == ("gambling", "lexicon.gambling")
    start = TEXTS[2].index("八折")
    assert {"code": "lexicon.gambling", "start": start, "end": start + 2, "span": "八折"}.items() <= change.added[
        0
    ].items()
    assert report.groups[(tenant, verdicts[2]["decision"], "block", "gambling", "lexicon.gambling")] == 1
    # the CLI: table and JSON
    args = [
        sys.executable,
        "-m",
        "smsguard",
        "policy",
        "diff",
        "--policy",
        str(app.root / "policy.yaml"),
        "--lexicon",
        str(lex),
        "--model",
        str(PROJECT_ROOT / "models" / "classifier.onnx"),
        "--since",
        since.isoformat(),
    ]
    r = subprocess.run(
        [*args, "--json"], env=backend.env(), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["changed"] >= 1 and doc["groups"][0]["code"] == "lexicon.gambling"
    assert verdicts[2]["verdict_id"] in [c["verdict_id"] for c in doc["changes"]]
    r = subprocess.run(args, env=backend.env(), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and "lexicon.gambling" in r.stdout and "'八折'" in r.stdout, r.stdout + r.stderr
    bad = subprocess.run(
        [*args[:5], "--since", "yesterday"],
        env=backend.env(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert bad.returncode == 2 and "--since" in bad.stderr and "Traceback" not in bad.stderr


def test_reload_is_refused_over_the_flip_rate(backend, tmp_path_factory) -> None:
    from smsguard.storage import make_engine

    url = backend.scratch_database_url()  # its own database: the gate replays every verdict stored there
    db = make_engine(backend.settings(database_url=url).sqlalchemy_url)
    for app in _start(
        backend, tmp_path_factory, model=False, reload_max_flip_rate=0.0, reload_diff_days=1.0, database_url=url
    ):
        _, headers = _headers(backend, "admin", db)
        _screen(app.client, headers, [{"text": t} for t in TEXTS])
        before = app.engine.versions
        gambling = app.root / "lex" / "gambling.tsv"
        gambling.write_text(LEXICON["gambling.tsv"] + "发货\tgambling\thigh\tsubstring\n", "utf-8")
        r = app.client.post("/v1/admin/reload", headers=headers, json={"what": []})
        assert r.status_code == 409 and r.json()["code"] == "reload.flip_rate", r.text
        # the figures: how many of how many, the rate against the allowed one, and what changed most
        message = r.json()["message"]
        assert "changes 1 of 5 decisions" in message and "(20.00%)" in message and "0.00%" in message, message
        assert "review->block lexicon.gambling: 1" in message or "pass->block lexicon.gambling: 1" in message, message
        assert r.json()["where"] == "SMSGUARD_RELOAD_MAX_FLIP_RATE"
        assert app.engine.versions == before
        # a reload of the policy alone is judged with the lexicon in force (from the version store), not the
        # changed file it leaves alone: nothing would change, so it goes through
        r = app.client.post("/v1/admin/reload", headers=headers, json={"what": ["policy"]})
        assert r.status_code == 200, r.text
        assert app.engine.versions == before
        gambling.write_text(LEXICON["gambling.tsv"] + "# a comment changes the version, not a decision\n", "utf-8")
        r = app.client.post("/v1/admin/reload", headers=headers, json={"what": []})
        assert r.status_code == 200, r.text
        assert app.engine.versions.lexicon != before.lexicon
        with db.connect() as conn:  # the reload's audit event keeps the figures it was allowed on
            payload = conn.execute(
                text("SELECT payload FROM audit_events WHERE event_type = 'lexicon' ORDER BY id DESC")
            ).first()[0]
        v = app.engine.versions
        assert json.loads(payload)["shadow"] == {
            "replayed": 5,
            "changed": 0,
            "flip_rate": 0.0,
            "max_flip_rate": 0.0,
            "candidate": {"policy": v.policy, "lexicon": v.lexicon, "model": v.model},  # what was promoted
        }
    db.dispose()


@pytest.fixture
def own_app(backend, tmp_path_factory) -> Iterator[tuple[App, object, str]]:
    """An app on a database of its own (these tests change the policy in force or tamper the version store)."""
    from smsguard.storage import make_engine

    url = backend.scratch_database_url()
    db = make_engine(backend.settings(database_url=url).sqlalchemy_url)
    try:
        for app in _start(backend, tmp_path_factory, model=False, database_url=url):
            yield app, db, url
    finally:
        db.dispose()


def test_replay_after_a_policy_change_still_reproduces_the_old_verdict(backend, own_app) -> None:
    app, db, _ = own_app
    _, headers = _headers(backend, "admin", db)
    casino = TEXTS[0] + "，回T退订"  # 赌场: gambling, high, and nothing else
    [old] = _screen(app.client, headers, [{"text": casino}])
    assert old["decision"] == "block"
    policy = app.root / "policy.yaml"
    # the new policy sends to review what the old one blocked: another decision for the same text
    raw = policy.read_text("utf-8")
    line = "gambling:     {low: review, medium: block, high: block}"
    assert line in raw
    policy.write_text(raw.replace(line, "gambling:     {low: review, medium: review, high: review}"), "utf-8")
    r = app.client.post("/v1/admin/reload", headers=headers, json={"what": ["policy"]})
    assert r.status_code == 200, r.text
    assert r.json()["policy"] != old["versions"]["policy"]
    [new] = _screen(app.client, headers, [{"text": casino}])
    assert new["decision"] == "review" and new["versions"]["policy"] != old["versions"]["policy"]
    for v in (old, new):  # each under its own policy, rebuilt from the stored bytes, not from policy.yaml
        result = replay(db, v["verdict_id"])
        assert result.identical, result.differences
        assert result.versions["policy"] == v["versions"]["policy"]


def test_tampering_a_stored_version_is_detected(backend, own_app) -> None:
    from smsguard.core import SmsguardError

    app, db, url = own_app
    _, headers = _headers(backend, None, db)
    [v] = _screen(app.client, headers, [{"text": TEXTS[0]}])
    assert replay(db, v["verdict_id"]).identical
    policy_version = v["versions"]["policy"]
    with db.connect() as conn:
        sha = conn.execute(
            text("SELECT sha256 FROM audit_versions WHERE kind = 'policy' AND version = :v"), {"v": policy_version}
        ).scalar_one()
        original = bytes(
            conn.execute(text("SELECT content FROM audit_blobs WHERE sha256 = :s"), {"s": sha}).scalar_one()
        )
    forged = original.replace(b"high: block}", b"high: review}", 1)
    assert forged != original
    # 1. the bytes are edited in place: they no longer hash to their key
    with db.begin() as conn:
        conn.execute(text("UPDATE audit_blobs SET content = :c WHERE sha256 = :s"), {"c": forged, "s": sha})
    with pytest.raises(SmsguardError) as e:
        replay(db, v["verdict_id"])
    assert (e.value.code, e.value.where) == ("audit.blob_corrupt", f"policy:{policy_version}")
    r = subprocess.run(
        [sys.executable, "-m", "smsguard", "audit", "replay", v["verdict_id"]],
        env=backend.env(DATABASE_URL=url),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "audit.blob_corrupt" in r.stderr and "Traceback" not in r.stderr, r.stderr
    # 2. a consistent forgery: new bytes stored under their own hash and the version pointed at them
    import hashlib

    forged_sha = hashlib.sha256(forged).hexdigest()
    with db.begin() as conn:
        conn.execute(text("UPDATE audit_blobs SET content = :c WHERE sha256 = :s"), {"c": original, "s": sha})
        conn.execute(
            text("INSERT INTO audit_blobs (sha256, size, content) VALUES (:s, :n, :c)"),
            {"s": forged_sha, "n": len(forged), "c": forged},
        )
        conn.execute(
            text("UPDATE audit_versions SET sha256 = :f WHERE kind = 'policy' AND version = :v"),
            {"f": forged_sha, "v": policy_version},
        )
    with pytest.raises(SmsguardError) as e:
        replay(db, v["verdict_id"])
    assert e.value.code == "audit.version_mismatch" and policy_version in e.value.message
    # put back, the same verdict replays again
    with db.begin() as conn:
        conn.execute(
            text("UPDATE audit_versions SET sha256 = :s WHERE kind = 'policy' AND version = :v"),
            {"s": sha, "v": policy_version},
        )
    assert replay(db, v["verdict_id"]).identical
