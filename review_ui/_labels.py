"""What the reviewer pages call the values they show (item statuses, roles, severities, sources, actions), in
the request's language: stored value → English message id (``N_``), translated when the page is drawn."""

from __future__ import annotations

from collections.abc import Callable

from smsguard.i18n import N_, gettext

ITEM_STATUSES = {
    "pending": N_("pending"),
    "escalated": N_("escalated"),
    "second": N_("awaiting 2nd approval"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "filed": N_("filed"),
}
ROLES = {"auditor": N_("auditor"), "reviewer": N_("reviewer"), "senior": N_("senior"), "admin": N_("admin")}
SEVERITIES = {"high": N_("high"), "medium": N_("medium"), "low": N_("low")}
SOURCES = {
    "api": N_("API"),
    "batch_content": N_("batch"),
    "template": N_("template"),
    "template_version": N_("template version"),
    "signature": N_("signature application"),
    "demo": N_("demo"),
}
ACTIONS = {
    "approve": N_("approved"),
    "reject": N_("rejected"),
    "escalate": N_("escalated"),
    "claim": N_("claimed"),
    "release": N_("gave back"),
    "undo": N_("undid"),
    "pass": N_("pass"),
    "review": N_("review"),
    "block": N_("block"),
}


def _label(table: dict[str, str]) -> Callable[[object], str]:
    def label(value: object) -> str:
        text = table.get(str(value))
        return gettext(text) if text else str(value)

    return label


GLOBALS = {
    "item_status": _label(ITEM_STATUSES),
    "role_label": _label(ROLES),
    "severity_label": _label(SEVERITIES),
    "source_label": _label(SOURCES),
    "action_label": _label(ACTIONS),
}
"""The template engine's globals of this module."""
