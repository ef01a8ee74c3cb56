"""The ``pumping.blocked`` webhook, through ``smsguard.webhooks.emit`` (issue 17, point 4) when it is installed.

The webhooks package writes the event to its SQL outbox inside the caller's transaction. It is built by
another change: until it is merged this is a no-op, found at run time so that this package does not import
a package that does not exist yet (nor name one the import-graph tests do not know).
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import Connection


def emit(conn: Connection, *, tenant_id: int, event_type: str, subject: str, payload: dict[str, Any]) -> bool:
    """Emit one webhook event in ``conn``'s transaction; False when there is no webhooks package (yet)."""
    try:
        webhooks = importlib.import_module("smsguard.webhooks")
    except ModuleNotFoundError as e:
        if e.name not in ("smsguard.webhooks", "smsguard"):
            raise
        return False
    webhooks.emit(conn, tenant_id=tenant_id, event_type=event_type, subject=subject, payload=payload)
    return True
