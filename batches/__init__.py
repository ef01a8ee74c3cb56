"""Everything before the gateway: templates, contact lists, opt-outs and complaints, frequency caps, quiet
hours, budgets, batches and their release to the sending queue (issue 7), plus the gateway layer's
``EventSink`` (delivery reports and MO replies into SQL).

Public entry points::

    ctx = runtime.batch_context()                           # SQL + Redis + phone vault (smsguard.runtime)
    create_template(ctx, tenant_id, name=…, kind=…, signature=…, body="…${name}…")
    import_contacts(ctx, tenant_id, "list name", open("contacts.csv", "rb"))
    create_batch(ctx, tenant_id, template_id=…, list_id=…, schedule_at=None)
    ReleaseWorker(ctx).run()                                # `smsguard batch worker`
    sending.EventRelay(store, SqlEventSink(ctx))

Importing this package registers the review decision handlers for sources ``template`` and
``batch_content``.
"""

from smsguard import review
from smsguard.phones import InvalidPhone, Phone, PhoneVault, mask, parse_phone, vault_for

from ._batches import cancel_batch, create_batch
from ._billing import policy_prices
from ._billing import reconcile as reconcile_billing
from ._budget import get_budget, set_budget
from ._common import BatchError, BudgetExceeded, Context
from ._contacts import delete_list, get_list, import_contacts, rejects_csv
from ._decisions import on_content_decision
from ._list_tools import MAX_MERGE, export_contacts, merge_lists, preview_contacts
from ._optouts import classify, handle_mo, opt_in, opt_out, opted_out_among, rebuild_sets, record_complaint
from ._optouts import status as optout_status
from ._policy import BatchesPolicy, CapRules, FrequencyCap, PolicySections, QuietHours, batches_policy
from ._reading import get_batch, list_recipients, report_csv
from ._release import ReleaseWorker, in_quiet_hours, message_id, parse_message_id
from ._rotation import RotationReport, rotate_phone_keys
from ._sink import SqlEventSink, SqlSentJournal, apply_inbound, apply_report
from ._stats import daily_states, failure_codes
from ._submit import submit_batch
from ._template_versions import (
    decide_version,
    on_version_decision,
    pending_versions,
    propose_version,
    template_history,
)
from ._templates import Template, create_template, get_template, on_template_decision
from ._view import (
    MESSAGE_STATES,
    RECORD_STATES,
    drop_handed_secrets,
    message_view,
    redact_text,
    seal_secret,
    search_recipients,
)


def register_review_handlers() -> None:
    """Hook batch contents and templates into the review queue's decisions (idempotent)."""
    review.register_decision_handler("batch_content", on_content_decision)
    review.register_decision_handler("template", on_template_decision)
    review.register_decision_handler("template_version", on_version_decision)


register_review_handlers()

__all__ = [
    "MAX_MERGE",
    "MESSAGE_STATES",
    "RECORD_STATES",
    "BatchError",
    "BatchesPolicy",
    "BudgetExceeded",
    "CapRules",
    "Context",
    "FrequencyCap",
    "InvalidPhone",
    "Phone",
    "PhoneVault",
    "PolicySections",
    "QuietHours",
    "ReleaseWorker",
    "RotationReport",
    "SqlEventSink",
    "SqlSentJournal",
    "Template",
    "apply_inbound",
    "apply_report",
    "batches_policy",
    "cancel_batch",
    "classify",
    "create_batch",
    "create_template",
    "daily_states",
    "decide_version",
    "delete_list",
    "drop_handed_secrets",
    "export_contacts",
    "failure_codes",
    "get_batch",
    "get_budget",
    "get_list",
    "get_template",
    "handle_mo",
    "import_contacts",
    "in_quiet_hours",
    "list_recipients",
    "mask",
    "merge_lists",
    "message_id",
    "message_view",
    "on_content_decision",
    "on_template_decision",
    "on_version_decision",
    "opt_in",
    "opt_out",
    "opted_out_among",
    "optout_status",
    "parse_message_id",
    "parse_phone",
    "pending_versions",
    "policy_prices",
    "preview_contacts",
    "propose_version",
    "rebuild_sets",
    "reconcile_billing",
    "record_complaint",
    "redact_text",
    "register_review_handlers",
    "rejects_csv",
    "report_csv",
    "rotate_phone_keys",
    "seal_secret",
    "search_recipients",
    "set_budget",
    "submit_batch",
    "template_history",
    "vault_for",
]
