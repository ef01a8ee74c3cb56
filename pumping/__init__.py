"""Anti-pumping and anti-bombing (issue 17, point 3): velocity per number, number prefix (the 7-digit HLR
segment), tenant and client IP across every tenant and signature; verification conversion per prefix; throttle,
then block; operators' allow-lists and blocks in SQL.

::

    guard = PumpingGuard(db=rt.db, redis=rt.redis, vault=rt.vault, settings=rt.settings)
    guard.check(tenant_id, "13800138000", signature="【示例】", client_ip="203.0.113.7", kind="verification")
        -> Decision(action="allow" | "throttle" | "block", code="pumping.…", message, where, retry_after)
    guard.check(...).raise_if_refused(phone_where="$.to")   # PumpingRefused: 429 (+ Retry-After) at the API edge
    guard.record_sent(tenant_id, phone, signature)          # /v1/verify, after the code is handed over
    guard.record_verified(tenant_id, phone, signature)      # /v1/verify/check, on a correct code
    guard.allow / block / lift / rules                      # `smsguard pumping …`, /v1/admin/pumping/…

Redis holds only short-lived counters (keyed hashes, never digits); allow-lists and blocks are rows in SQL,
each change an audit event, each automatic block also a ``pumping.blocked`` webhook to the tenant whose
traffic tripped it.
"""

from ._guard import (
    ALLOW,
    BLOCKED,
    IP_VELOCITY,
    NUMBER_VELOCITY,
    PREFIX_LOW_CONVERSION,
    PREFIX_VELOCITY,
    TENANT_VELOCITY,
    Decision,
    PumpingGuard,
    PumpingRefused,
)
from ._rules import PREFIX_DIGITS, Rule, Subject
from ._tables import ACTIONS, SCOPES, metadata, pumping_rules

__all__ = [
    "ACTIONS",
    "ALLOW",
    "BLOCKED",
    "IP_VELOCITY",
    "NUMBER_VELOCITY",
    "PREFIX_DIGITS",
    "PREFIX_LOW_CONVERSION",
    "PREFIX_VELOCITY",
    "SCOPES",
    "TENANT_VELOCITY",
    "Decision",
    "PumpingGuard",
    "PumpingRefused",
    "Rule",
    "Subject",
    "metadata",
    "pumping_rules",
]
