"""What every part of the batches feature needs: SQL, Redis, the phone vault, the policy, the screening
engine (when there is one), and a few helpers (time, errors, tenant names)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from engine import ConflictError, NotFoundError, Policy, SmsguardError, default_config, load_policy
from engine import Engine as ScreeningEngine
from engine._rules import RULE_CODES

from ._phones import PhoneVault, vault_for
from ._tables import tenants


class BatchError(SmsguardError):
    code = "batch.invalid"


class NotFound(NotFoundError):
    pass


class Conflict(ConflictError):
    code = "batch.conflict"


class BudgetExceeded(SmsguardError):
    status_code = 402
    code = "budget.exceeded"


def now() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclasses.dataclass
class Context:
    """Handles shared by the API, the CLI, the release worker and the event sink of one process."""

    db: Engine
    redis: Any
    """A synchronous ``redis.Redis`` (the feature runs in threads: SQL is synchronous too)."""
    vault: PhoneVault
    namespace: str = "smsguard"
    screening: ScreeningEngine | None = None
    policy_override: Policy | None = None
    actor: str = "system:batches"

    @property
    def policy(self) -> Policy:
        if self.policy_override is not None:
            return self.policy_override
        if self.screening is not None:
            return self.screening.policy
        self.policy_override = _default_policy()
        return self.policy_override

    @property
    def send_namespace(self) -> str:
        """The ``sending.MessageStore`` namespace gateway workers read (``--ns``)."""
        return f"{self.namespace}:send"

    def require_engine(self) -> ScreeningEngine:
        if self.screening is None:
            self.screening = ScreeningEngine(default_config())
        return self.screening


def _default_policy() -> Policy:
    policy, _ = load_policy(default_config().policy_path, known_rules=frozenset(RULE_CODES))
    return policy


def make_context(
    settings: Any, *, screening: ScreeningEngine | None = None, migrate_db: bool = True
) -> tuple[Context, Any]:
    """A Context for ``settings`` and the RedisLocation to ``close()`` when done."""
    import redis

    from storage import locate_redis, make_engine, migrate

    db = make_engine(settings.sqlalchemy_url)
    if migrate_db:
        migrate(db)
    location = locate_redis(settings.redis_url, settings.data_dir)
    client = redis.Redis.from_url(location.url, socket_timeout=30, socket_connect_timeout=5)
    ctx = Context(
        db=db, redis=client, vault=vault_for(settings.data_dir), namespace=settings.redis_namespace, screening=screening
    )
    return ctx, location


def tenant_name(conn: Connection, tenant_id: int) -> str:
    name = conn.execute(select(tenants.c.name).where(tenants.c.id == tenant_id)).scalar_one_or_none()
    if name is None:
        raise NotFound(f"no tenant {tenant_id}", where="tenant", code="tenant.not_found")
    return name


def tenant_id_of(conn: Connection, name: str) -> int:
    tid = conn.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar_one_or_none()
    if tid is None:
        raise NotFound(f"no tenant {name!r}", where="tenant", code="tenant.not_found")
    return tid
