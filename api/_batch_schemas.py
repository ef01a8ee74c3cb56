"""Request and response bodies of the batch routes (``api/_batches.py``), as msgspec structs.

The ``batches`` functions answer plain dicts (the console and the CLI read them too); the routes convert them
into these structs at the edge, so the OpenAPI document says what every answer holds and an answer that drifted
from it fails loudly in the tests instead of silently in a client. Times are the ISO 8601 text the functions
give (SQLite's are naive, so no ``date-time`` format is claimed); money is a decimal string in ``currency``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from smsguard.batches import MAX_MERGE
from smsguard.engine import Verdict

Kind = Literal["verification", "notification", "marketing"]
MAX_ID = 2**31 - 1  # ids are SQL INTEGER: larger values are a 400, not a driver overflow
BodyId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
Short = Annotated[str, msgspec.Meta(max_length=100)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]  # a client's message id: repeats are ignored
Time = Annotated[str, msgspec.Meta(description="ISO 8601 time")]
Money = Annotated[str, msgspec.Meta(description="A decimal amount in the policy's currency, 4 places")]
Masked = Annotated[str, msgspec.Meta(description="The phone number masked, e.g. 138****5678")]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: unknown fields are a 400 naming them."""


class _Out(msgspec.Struct, kw_only=True):
    """A response body."""


# -- requests ------------------------------------------------------------------------------------------
class TemplateIn(_In):
    name: str
    kind: Kind
    signature: str
    body: str
    samples: dict[str, str] = {}


class MergeIn(_In):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern="\\S")]
    # the first list named wins a number that is in several (its variable values are kept)
    list_ids: Annotated[list[BodyId], msgspec.Meta(min_length=2, max_length=MAX_MERGE)]


class TemplateVersionIn(_In):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    # filing.check_name's rule said in the schema: blanks and 【】 around 2-20 Chinese characters, letters or
    # digits; empty keeps the template's signature
    signature: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=32,
                pattern="^(\\s*[【】]*[\u4e00-\u9fffA-Za-z0-9]{2,20}[【】]*\\s*)?$",
                description="2-20 Chinese characters, letters or digits (【】 around them are dropped); empty or "
                "left out: the template's",
            ),
        ]
        | None
    ) = None


class BatchIn(_In):
    name: str = ""
    template_id: BodyId | None = None
    list_id: BodyId | None = None
    content: str | None = None
    numbers: list[str] | None = None
    kind: Kind | None = None
    signature: str | None = None
    schedule_at: datetime | None = None
    draft: bool = False


class SubmitIn(_In):
    numbers: list[str] | None = None


class InboundIn(_In):
    phone: str
    text: str
    to: str = ""
    signature: Short | None = None
    gateway: Annotated[str, msgspec.Meta(max_length=64)] = "api"  # the column's size: (gateway, id) is unique
    id: Ref | None = None


class OptoutIn(_In):
    phone: str
    signature: Annotated[str, msgspec.Meta(max_length=32)] = ""


class ComplaintIn(_In):
    phone: str
    signature: Annotated[str, msgspec.Meta(max_length=32)] = ""
    text: str = ""
    source: Annotated[str, msgspec.Meta(max_length=16)] = "api"
    id: Ref | None = None


MAX_BUDGET = 1e12
"""The largest budget: it is stored in millionths (SQL BIGINT, at most ~9.2e18), so 9.3e12 would overflow."""
Budget = Annotated[float, msgspec.Meta(ge=0, le=MAX_BUDGET, description="In the policy's currency, 0 to 1e12")]


class BudgetIn(_In):
    limit: Budget | None


# -- responses -----------------------------------------------------------------------------------------
class TemplateOut(_Out):
    id: int
    name: str
    kind: str
    signature: str
    body: str
    variables: list[str]
    status: Annotated[str, msgspec.Meta(description="screening | review | approved | rejected | blocked")]
    reason: str | None
    verdict: Verdict | None  # the screened sample's verdict
    created_at: Time | None


class TemplateVersionOut(_Out):
    id: int
    template_id: int
    version: int
    signature: str
    body: str
    status: Annotated[str, msgspec.Meta(description="pending | approved | rejected")]
    reason: str | None
    created_at: Time
    decided_at: Time | None


class Rejected(_Out):
    """A rejected line of a contact list."""

    line: int
    kind: Annotated[str, msgspec.Meta(description="invalid | duplicate")]
    code: str
    reason: str
    value: str


class ContactListOut(_Out):
    id: int
    name: str
    status: Annotated[str, msgspec.Meta(description="importing | ready | failed")]
    encoding: str
    columns: list[str]
    total: int
    valid: int
    invalid: int
    duplicates: int
    error: str | None
    rejected: list[Rejected]


class MergedListOut(ContactListOut):
    sources: list[int]  # the lists merged, in the order given
    opted_out: int  # numbers of the new list opted out now (kept: skipped at release)


class ContactOut(_Out):
    seq: int
    line: int  # of the uploaded CSV
    phone: Masked
    carrier: str | None
    values: list[str]  # the variable columns, in the order of ``columns``


class ContactPreview(_Out):
    list_id: int
    columns: list[str]
    valid: int
    contacts: list[ContactOut]


class DeletedOut(_Out):
    id: int
    deleted: bool


class Hold(_Out):
    """Why a batch waits, and until when."""

    reason: Literal["quiet_hours"]
    until: Time | None


class ContentReview(_Out):
    """The human review of one content of a batch."""

    content_id: int
    decision: str
    reason: str | None
    category: str | None


class Content(_Out):
    """One distinct text of a batch and its screening."""

    content_id: int
    content_hash: str
    decision: str
    review: str
    segments: int
    recipients: int
    reason: str | None


class BatchOut(_Out):
    id: int
    name: str
    state: Annotated[
        str,
        msgspec.Meta(
            description="draft | screening | review | approved | scheduled | releasing | sending | done | cancelled"
        ),
    ]
    kind: str
    signature: str
    sender: str
    template_id: int | None
    list_id: int | None
    schedule_at: Time | None
    resume_at: Time | None
    total: int
    reason: str | None
    estimate: Money
    currency: str
    counts: dict[str, int]  # recipients per status
    waiting_for: Annotated[str | None, msgspec.Meta(description="channel | receipts, or null")]
    hold: Hold | None
    cancellable: bool
    review: list[ContentReview]
    contents: list[Content]
    created_at: Time | None
    released_at: Time | None
    done_at: Time | None


class Recipient(_Out):
    seq: int
    phone: Masked
    carrier: str
    status: str
    detail: str | None
    submitted_at: Time | None
    final_at: Time | None
    gateway: str | None
    carrier_code: str | None


class RecipientPage(_Out):
    recipients: list[Recipient]
    next_after: Annotated[int | None, msgspec.Meta(description="The `after` of the next page; null: the last one")]


class InboundOut(_Out, omit_defaults=True):
    action: Annotated[str, msgspec.Meta(description="opt_out | opt_in | complaint | none")]
    scope: str | None
    phone: Masked
    repeat: bool = False  # only said (true) for an MO already handled: nothing changed


class OptedOut(_Out):
    phone: Masked
    opted_out: bool


class OptedIn(_Out):
    phone: Masked
    lifted: list[str]  # the scopes lifted


class OptoutStatus(_Out):
    phone: Masked
    global_: bool = msgspec.field(name="global")  # opted out of every tenant (only an admin lifts it)
    tenant: bool
    signature: bool


class ComplaintOut(_Out):
    id: int
    repeat: bool


class BudgetOut(_Out):
    limit: Money | None
    spent: Money
    remaining: Money | None
    currency: str
