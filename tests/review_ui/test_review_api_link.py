"""``POST /v1/screen`` answering ``review`` creates a review item (source "api"); ``GET /v1/verdicts/{id}`` shows
the human decision once made. On both backends."""

from __future__ import annotations

import shutil

import redis
from litestar.testing import TestClient

from smsguard.engine import PROJECT_ROOT, Engine, EngineConfig
from smsguard.review import ReviewConfig
from smsguard.review._queue import Queue
from smsguard.review._service import ReviewService
from smsguard.review._users import create_user
from smsguard.storage import create_key, create_tenant


def test_screen_review_becomes_an_item_and_the_verdict_shows_the_decision(backend, tmp_path, unique_name) -> None:
    from smsguard.api import create_app

    shutil.copyfile(PROJECT_ROOT / "policy.yaml", tmp_path / "policy.yaml")
    lex = tmp_path / "lex"
    lex.mkdir()
    (lex / "loan.tsv").write_text("低息贷款\tloan\tlow\tsubstring\n", "utf-8")
    engine = Engine(EngineConfig(policy_path=tmp_path / "policy.yaml", lexicon_dirs=(lex,), model_path=None))
    settings = backend.settings()
    with TestClient(create_app(engine, settings=settings)) as client:
        tenant = create_tenant(backend.db, unique_name("api"))
        key, _ = create_key(backend.db, tenant.name)
        headers = {"Authorization": f"Bearer {key}"}
        message = {"text": "【甲银行】低息贷款，回T退订", "kind": "marketing"}
        r = client.post("/v1/screen", json=message, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["decision"] == "review"
        vid = body["verdict_id"]
        stored = client.get(f"/v1/verdicts/{vid}", headers=headers).json()
        assert stored["review"] == {"status": "pending", "decided_at": None}

        r2 = client.post("/v1/screen", json={"text": "【甲银行】您的验证码是123456", "kind": "verification"},
                         headers=headers)
        assert client.get(f"/v1/verdicts/{r2.json()['verdict_id']}", headers=headers).json().get("review") is None

        rc = redis.Redis.from_url(settings.redis_url)
        try:
            config = ReviewConfig()
            service = ReviewService(backend.db, Queue(backend.db, rc, namespace=settings.redis_namespace,
                                                      config=config), config)
            user = create_user(backend.db, unique_name("rv"), "correct horse battery", "reviewer")
            from sqlalchemy import select

            from smsguard.review._tables import review_items

            with backend.db.connect() as conn:
                item = conn.execute(select(review_items.c.id).where(review_items.c.source == "api",
                                                                    review_items.c.source_ref == vid)).scalar_one()
            assert service.claim(user, item)[0]
            service.decide(user, item, version=1, action="reject", reason="unlicensed loan marketing")
        finally:
            rc.close()
        stored = client.get(f"/v1/verdicts/{vid}", headers=headers).json()
        assert stored["review"]["status"] == "rejected" and stored["review"]["decided_at"]
