"""What the console's pages call the values they show (kinds, states, statuses, roles), in the request's language.

The dictionaries map a stored value to its English message id (``N_`` marks them for the catalogue); the functions
translate when a page is drawn. An unknown value shows as itself.
"""

from __future__ import annotations

from smsguard.i18n import N_, gettext

KINDS = {"marketing": N_("marketing"), "notification": N_("notification"), "verification": N_("verification")}
BATCH_STATES = {
    "draft": N_("draft"),
    "screening": N_("screening"),
    "review": N_("in review"),
    "approved": N_("approved"),
    "scheduled": N_("scheduled"),
    "releasing": N_("releasing"),
    "sending": N_("sending"),
    "done": N_("done"),
    "cancelled": N_("cancelled"),
}
RECORD_STATES = {
    "draft": N_("draft"),
    "screening": N_("screening"),
    "review": N_("manual review"),
    "scheduled": N_("scheduled"),
    "queued": N_("queued"),
    "deferred": N_("deferred"),
    "submitted": N_("submitted"),
    "delivered": N_("delivered"),
    "failed": N_("failed"),
    "expired": N_("expired"),
    "unknown": N_("unknown"),
    "rejected": N_("rejected"),
    "refused": N_("refused by the guard"),
    "cancelled": N_("cancelled"),
    "opted_out": N_("opted out"),
    "capped": N_("over the frequency cap"),
    "invalid": N_("invalid number"),
}
FILING_STATUSES = {
    "pending": N_("pending review"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "filed": N_("filed"),
}
TEMPLATE_STATUSES = {
    "screening": N_("screening"),
    "review": N_("in review"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "blocked": N_("blocked"),
}
LIST_STATUSES = {"importing": N_("importing"), "ready": N_("ready"), "failed": N_("failed")}
SIGNATURE_TYPES = {
    "company": N_("company"),
    "app": N_("app"),
    "trademark": N_("trademark"),
    "government": N_("government"),
    "public_institution": N_("public institution"),
    "website": N_("website"),
    "public_account": N_("official account"),
    "store": N_("online store"),
}
SIGNATURE_USES = {"self": N_("our own"), "others": N_("another party's")}
ROLES = {"customer": N_("customer"), "viewer": N_("viewer")}
FIELDS = {
    "mode": N_("Mode"),
    "name": N_("Batch name"),
    "template_id": N_("Template"),
    "list_id": N_("Contact list"),
    "kind": N_("Kind"),
    "signature": N_("Signature"),
    "content": N_("Message"),
    "numbers": N_("Numbers"),
    "schedule_at": N_("Send at"),
}
"""The compose form's fields as the customer reads them: an error is shown once, by its field, under this label."""


def _label(table: dict[str, str]):
    def label(value: object) -> str:
        text = table.get(str(value))
        return gettext(text) if text else str(value)

    return label


kind_label = _label(KINDS)
batch_state = _label(BATCH_STATES)
record_state = _label(RECORD_STATES)
filing_status = _label(FILING_STATUSES)
template_status = _label(TEMPLATE_STATUSES)
list_status = _label(LIST_STATUSES)
signature_type = _label(SIGNATURE_TYPES)
signature_use = _label(SIGNATURE_USES)
role_label = _label(ROLES)
field_label = _label(FIELDS)

GLOBALS = {
    "kind_label": kind_label,
    "batch_state": batch_state,
    "record_state": record_state,
    "filing_status": filing_status,
    "template_status": template_status,
    "list_status": list_status,
    "signature_type": signature_type,
    "signature_use": signature_use,
    "role_label": role_label,
    "field_label": field_label,
}
"""The template engine's globals of this module."""
