"""Webhooks (issue 17, point 4): per-tenant endpoints that receive delivery reports, MO replies and opt-outs,
review decisions, template status changes and budget alerts, signed, at least once, in order per subject.

The contract other packages use::

    webhooks.emit(conn, tenant_id=…, event_type="message.delivered", subject=f"message:{mid}", payload={…})

inside the transaction of the change the event reports (it goes to the SQL outbox, ``_outbox.py``).
``Dispatcher`` (the ``webhooks`` role of ``smsguard serve``) delivers it; endpoints, the delivery log,
dead letters and re-sends are the functions below (``/v1/webhooks`` in the API).
"""

from ._dispatcher import Dispatcher, Job, RetryPolicy, event_body
from ._endpoints import (
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
    rotate_secret,
    update_endpoint,
)
from ._log import DELIVERY_STATUSES, get_event, list_dead_letters, list_deliveries, resend_event
from ._outbox import EVENT_TYPES, emit
from ._signing import (
    ATTEMPT_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    REPLAY_WINDOW,
    SIGNATURE_HEADER,
    signature_header,
    verify,
)

__all__ = [
    "ATTEMPT_HEADER",
    "DELIVERY_STATUSES",
    "EVENT_ID_HEADER",
    "EVENT_TYPES",
    "EVENT_TYPE_HEADER",
    "REPLAY_WINDOW",
    "SIGNATURE_HEADER",
    "Dispatcher",
    "Job",
    "RetryPolicy",
    "create_endpoint",
    "delete_endpoint",
    "emit",
    "event_body",
    "get_endpoint",
    "get_event",
    "list_dead_letters",
    "list_deliveries",
    "list_endpoints",
    "resend_event",
    "rotate_secret",
    "signature_header",
    "update_endpoint",
    "verify",
]
