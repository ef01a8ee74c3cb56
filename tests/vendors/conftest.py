"""Fixtures of the customer-access tests (CMPP / SMPP servers): a batches Context with a small screening
engine (one gambling term) on the backend under test."""

from __future__ import annotations

import pytest

LEXICON = {"gambling.tsv": "赌场\tgambling\thigh\tsubstring\n"}


@pytest.fixture(scope="module")
def access_ctx(backend, migrated_db, tmp_path_factory: pytest.TempPathFactory):
    import redis

    from smsguard.batches import Context, vault_for
    from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig

    root = tmp_path_factory.mktemp("access-engine")
    (root / "lex").mkdir()
    for name, content in LEXICON.items():
        (root / "lex" / name).write_text(content, "utf-8")
    engine = Engine(EngineConfig(policy_path=PROJECT_ROOT / "policy.yaml", lexicon_dirs=(root / "lex",)))
    client = redis.Redis.from_url(backend.redis_url)
    yield Context(
        db=migrated_db, redis=client, vault=vault_for(backend.data_dir), namespace=backend.namespace, screening=engine
    )
    client.close()
