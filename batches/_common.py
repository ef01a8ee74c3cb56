"""What every part of the batches feature needs: SQL, Redis, the phone vault, the policy, the screening
engine (when there is one), and a few helpers (time, errors, tenant names)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, select

from smsguard.core import NotFoundError, QuotaError, Settings, SmsguardError
from smsguard.engine import Engine as ScreeningEngine
from smsguard.engine import default_config
from smsguard.phones import PhoneVault

from ._policy import PolicySections, read_sections
from ._tables import tenants

if TYPE_CHECKING:  # the Runtime builds Contexts; importing it here at run time would be an upward arrow
    from smsguard.runtime import Runtime


class BatchError(SmsguardError):
    code = "batch.invalid"


class BudgetExceeded(QuotaError):
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
    policy_override: PolicySections | None = None
    actor: str = "system:batches"
    settings: Settings | None = None
    """Where the policy and the engine come from (None: the process's settings)."""
    policy_source: Callable[[], PolicySections] | None = None
    """The policy document in force (the Runtime's, which follows reloads); None: read the file once."""
    _read: PolicySections | None = dataclasses.field(default=None, init=False, repr=False)

    @property
    def policy(self) -> PolicySections:
        """The policy sections this feature reads: ``screening`` (signature, length), ``batches`` (caps, quiet
        hours, MO reply words) and ``prices``."""
        if self.policy_override is not None:
            return self.policy_override
        if self.policy_source is not None:
            return self.policy_source()
        read = self._read
        if self.screening is None:
            if read is None:
                read = self._read = read_sections(default_config(self.settings).policy_path)
        elif read is None or read.screening is not self.screening.policy:  # first use, or the engine reloaded
            read = self._read = read_sections(self.screening.config.policy_path, screening=self.screening.policy)
        return read

    @property
    def send_namespace(self) -> str:
        """The ``sending.MessageStore`` namespace gateway workers read (``--ns``)."""
        return f"{self.namespace}:send"

    @classmethod
    def of(cls, runtime: Runtime, *, actor: str = "system:batches") -> Context:
        """The Context on ``runtime``'s SQL, Redis, vault and (when it has built one) screening engine."""
        screening = runtime.screening if runtime.has_screening else None
        return cls(db=runtime.db, redis=runtime.redis, vault=runtime.vault, namespace=runtime.settings.redis_namespace,
                   screening=screening, actor=actor, settings=runtime.settings, policy_source=lambda: runtime.policy)

    def require_engine(self) -> ScreeningEngine:
        if self.screening is None:
            self.screening = ScreeningEngine(default_config(self.settings))
        return self.screening


def tenant_name(conn: Connection, tenant_id: int) -> str:
    name = conn.execute(select(tenants.c.name).where(tenants.c.id == tenant_id)).scalar_one_or_none()
    if name is None:
        raise NotFoundError(f"no tenant {tenant_id}", where="tenant", code="tenant.not_found")
    return name


def tenant_id_of(conn: Connection, name: str) -> int:
    tid = conn.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar_one_or_none()
    if tid is None:
        raise NotFoundError(f"no tenant {name!r}", where="tenant", code="tenant.not_found")
    return tid
