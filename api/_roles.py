"""Which API-key roles may call which route: one table, enforced at the API edge by the key guard.

Roles (``api_keys.role``, migration audit_0002): ``client`` screens and runs its tenant's batches,
``admin`` does that and also reloads, sets budgets and tops up the prepaid balance, ``auditor`` reads its
tenant's audit log (numbers masked) and ``auditor_full`` any tenant's (as stored). Auditors read, never
write: their keys get the GET routes and the read-only ``POST /v1/optouts/status``, never a route that
changes something (issue 15: an auditor key created batches and templates, lifted opt-outs and posted MO).

A route missing from the table is refused to every key (fail closed), and ``tests/api/test_roles.py``
walks the OpenAPI document so a new route cannot ship without a row here.
"""

from __future__ import annotations

import functools
import re

CLIENT, ADMIN, AUDITOR, AUDITOR_FULL = "client", "admin", "auditor", "auditor_full"
ALL_ROLES = (CLIENT, ADMIN, AUDITOR, AUDITOR_FULL)

WRITE = frozenset({CLIENT, ADMIN})
"""Changes the tenant's data or spends its quota (screening writes verdicts and audit events)."""
READ = frozenset(ALL_ROLES)
ADMIN_ONLY = frozenset({ADMIN})
AUDIT = frozenset({AUDITOR, AUDITOR_FULL})

ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/screen"): WRITE,
    ("POST", "/v1/screen/batch"): WRITE,
    ("GET", "/v1/verdicts/{verdict_id}"): READ,
    ("POST", "/v1/admin/reload"): ADMIN_ONLY,
    ("GET", "/v1/audit/events"): AUDIT,
    ("GET", "/v1/audit/trail"): AUDIT,
    ("POST", "/v1/templates"): WRITE,
    ("GET", "/v1/templates/{template_id}"): READ,
    ("GET", "/v1/templates/{template_id}/versions"): READ,
    ("POST", "/v1/templates/{template_id}/versions"): WRITE,
    ("POST", "/v1/contact-lists"): WRITE,
    ("GET", "/v1/contact-lists/{list_id}"): READ,
    ("GET", "/v1/contact-lists/{list_id}/rejects.csv"): READ,
    ("GET", "/v1/contact-lists/{list_id}/contacts"): READ,
    ("GET", "/v1/contact-lists/{list_id}/export.csv"): READ,  # numbers masked for auditor keys
    ("POST", "/v1/contact-lists/merge"): WRITE,
    ("DELETE", "/v1/contact-lists/{list_id}"): WRITE,
    ("POST", "/v1/batches"): WRITE,
    ("GET", "/v1/batches/{batch_id}"): READ,
    ("POST", "/v1/batches/{batch_id}/submit"): WRITE,
    ("POST", "/v1/batches/{batch_id}/cancel"): WRITE,
    ("GET", "/v1/batches/{batch_id}/recipients"): READ,
    ("GET", "/v1/batches/{batch_id}/report.csv"): READ,
    ("POST", "/v1/inbound"): WRITE,
    ("POST", "/v1/optouts"): WRITE,
    ("POST", "/v1/optouts/remove"): WRITE,
    ("POST", "/v1/optouts/status"): READ,  # a question, changes nothing
    ("POST", "/v1/complaints"): WRITE,
    ("GET", "/v1/budget"): READ,
    ("PUT", "/v1/budget"): ADMIN_ONLY,
    # the prepaid ledger (api/_billing.py): the tenant reads; top-ups and settings are the operator's
    ("GET", "/v1/balance"): READ,
    ("GET", "/v1/ledger"): READ,
    ("GET", "/v1/prices"): READ,
    ("POST", "/v1/balance/topups"): ADMIN_ONLY,
    ("PUT", "/v1/balance/settings"): ADMIN_ONLY,
    # the sending side (api/_channels.py): the channels are the operator's; reconciliation is per tenant
    ("GET", "/v1/channels"): ADMIN_ONLY,
    ("GET", "/v1/reconciliation"): READ,
    # anti-pumping (api/_pumping.py): allow-lists and blocks are service-wide, so operators' (admin) only
    ("GET", "/v1/admin/pumping/rules"): ADMIN_ONLY,
    ("POST", "/v1/admin/pumping/allow"): ADMIN_ONLY,
    ("POST", "/v1/admin/pumping/block"): ADMIN_ONLY,
    ("POST", "/v1/admin/pumping/lift"): ADMIN_ONLY,
    # signature filing (api/_signatures.py): the tenant applies; a platform reviewer decides in the review UI
    ("POST", "/v1/signatures"): WRITE,
    ("GET", "/v1/signatures"): READ,
    ("GET", "/v1/signatures/{signature_id}"): READ,
    ("POST", "/v1/signatures/{signature_id}/resubmit"): WRITE,
    ("GET", "/v1/signatures/{signature_id}/documents/{document_id}"): READ,
    # webhooks (api/_webhooks.py): the tenant's endpoints, their delivery log, dead letters and re-sends
    ("POST", "/v1/webhooks"): WRITE,
    ("GET", "/v1/webhooks"): READ,
    ("GET", "/v1/webhooks/{webhook_id}"): READ,
    ("PATCH", "/v1/webhooks/{webhook_id}"): WRITE,
    ("DELETE", "/v1/webhooks/{webhook_id}"): WRITE,
    ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"): WRITE,
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): READ,
    ("GET", "/v1/webhooks/dead-letters"): READ,
    ("GET", "/v1/webhooks/events/{event_id}"): READ,
    ("POST", "/v1/webhooks/events/{event_id}/resend"): WRITE,
    # single messages and verification codes (api/_messages.py)
    ("POST", "/v1/messages"): WRITE,
    ("GET", "/v1/messages"): READ,
    ("GET", "/v1/messages/{message_id}"): READ,
    ("POST", "/v1/verify"): WRITE,
    ("POST", "/v1/verify/check"): WRITE,  # counts an attempt, may use the code up
    ("GET", "/v1/verify/{verification_id}"): READ,
    ("GET", "/v1/verify/stats"): READ,
    ("GET", "/v1/verify/settings"): READ,
    ("PUT", "/v1/verify/settings"): ADMIN_ONLY,
}

PUBLIC: frozenset[tuple[str, str]] = frozenset({("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")})
"""Routes without a key (probes and scraping)."""

VENDOR_SIGNED: frozenset[tuple[str, str]] = frozenset({("POST", "/"), ("POST", "/tencent"), ("POST", "/aliyun")})
"""The drop-in Tencent / Aliyun endpoints (api/_vendors.py): no API key, each request is signed with a vendor
credential (TC3-HMAC-SHA256, ACS3-HMAC-SHA256 or HMAC-SHA1) that names the tenant; an API key opens nothing
there. They only send as a ``client`` key would (templates, batches, status reads of that tenant)."""

_PARAM_TYPE = re.compile(r"\{(\w+):\w+\}")


@functools.cache  # a handful of routes, asked on every request: the regex once per route, not per request
def route_key(method: str, path_template: str) -> tuple[str, str]:
    """``("GET", "/v1/batches/{batch_id}")`` for litestar's ``/v1/batches/{batch_id:int}``: the OpenAPI path."""
    return method.upper(), _PARAM_TYPE.sub(r"{\1}", path_template)


@functools.cache
def roles_for(method: str, path_template: str) -> frozenset[str]:
    """The roles allowed on a route; empty (nobody) for a route the table does not know."""
    return ROUTE_ROLES.get(route_key(method, path_template), frozenset())
