"""Compose drafts, kept server-side per console user (issue 19: a session that expired mid-compose lost the
draft). The compose page saves the form as it is edited (``POST /console/api/draft``); the next visit to
``/console/compose``, after a re-login too, restores it; submitting the batch or "Discard draft" removes it.

The form holds phone numbers, so it is stored encrypted with the phone vault (AES-GCM), never as plain text.
A draft is scratch input, not an acknowledged change of the tenant's data, so saving one is not an audit event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from smsguard.core import SmsguardError
from smsguard.phones import PhoneVault

from ._tables import console_drafts

FIELDS = ("mode", "name", "template_id", "list_id", "kind", "signature", "content", "numbers", "schedule_at")
MAX_CHARS = 400_000
"""A whole draft (10,000 ad-hoc numbers are ~130k characters)."""


class DraftError(SmsguardError):
    code = "console.draft"


def clean(form: dict[str, Any]) -> dict[str, str]:
    out = {k: str(form.get(k) or "") for k in FIELDS if form.get(k) not in (None, "")}
    if sum(len(v) for v in out.values()) > MAX_CHARS:
        raise DraftError(f"a draft holds at most {MAX_CHARS:,} characters", where="$")
    return out


def save(db: Any, vault: PhoneVault, user_id: int, tenant_id: int, form: dict[str, Any]) -> datetime:
    data = clean(form)
    at = datetime.now(UTC)
    blob = vault.encrypt(json.dumps(data, ensure_ascii=False))
    with db.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(console_drafts).values(user_id=user_id, tenant_id=tenant_id, form_enc=blob,
                                                     updated_at=at)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"form_enc": stmt.excluded.form_enc, "updated_at": stmt.excluded.updated_at},
        ))
    return at


def load(db: Any, vault: PhoneVault, user_id: int, tenant_id: int) -> dict[str, Any] | None:
    """The user's draft as ``{"form": {...}, "updated_at": datetime}``, or None."""
    with db.connect() as conn:
        row = conn.execute(
            select(console_drafts).where(console_drafts.c.user_id == user_id, console_drafts.c.tenant_id == tenant_id)
        ).one_or_none()
    if row is None:
        return None
    try:
        form = json.loads(vault.decrypt(row.form_enc))
    except Exception:  # under a phone key since dropped (drafts are not re-encrypted by a rotation): gone
        return None
    return {"form": form, "updated_at": row.updated_at}


def discard(db: Any, user_id: int) -> None:
    with db.begin() as conn:
        conn.execute(delete(console_drafts).where(console_drafts.c.user_id == user_id))
