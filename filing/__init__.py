"""Signature filing (issue 19): applications with encrypted qualification documents, a reviewer's decision,
per-channel filing status, and the rule that only approved signatures send.

Importing this package registers the review decision handler for source ``signature`` (an application is
also an item of the main review queue)."""

from smsguard import review

from ._documents import MAX_DOCUMENT_BYTES, DocumentVault, download_headers, sniff
from ._signatures import (
    KINDS,
    USES,
    SignatureNotApproved,
    apply,
    check_name,
    decide,
    document,
    get,
    list_signatures,
    on_signature_decision,
    require_approved,
    resubmit,
    set_channel,
)
from ._tables import metadata

review.register_decision_handler("signature", on_signature_decision)

__all__ = [
    "KINDS", "MAX_DOCUMENT_BYTES", "USES", "DocumentVault", "SignatureNotApproved", "apply", "check_name",
    "decide", "document", "download_headers", "get", "list_signatures", "metadata", "on_signature_decision",
    "require_approved",
    "resubmit", "set_channel", "sniff",
]
