"""The developer sending API behind ``/v1/messages`` and ``/v1/verify`` (issue 17, points 1 and 2).

::

    ctx = runtime.batch_context()
    send_message(ctx, tenant_id, to="13812345678", text="【示例商城】您的订单已发货。")   # a one-recipient batch
    get_message(ctx, tenant_id, message_id); list_messages(ctx, tenant_id, phone=…, state=…, since=…)
    start_verification(ctx, tenant_id, to="13812345678", signature="示例商城", actor=…)
    check_verification(ctx, tenant_id, to="13812345678", code="123456", actor=…)
    conversion(ctx, tenant_id, by=("prefix",))                                         # sent / verified

For the anti-pumping guard: ``record_code_sent`` / ``record_code_verified`` (count a code for a number, its
prefix and signature, in the caller's transaction) and ``add_verification_listener`` (told after each commit).
"""

from ._messages import MessageError, get_message, list_messages, resume_message, send_message
from ._tables import metadata
from ._verify import (
    PREFIX_DIGITS,
    TooManyAttempts,
    VerificationEvent,
    VerifyError,
    VerifyExpired,
    VerifyMismatch,
    VerifyUsed,
    add_verification_listener,
    check_verification,
    conversion,
    get_settings,
    get_verification,
    notify,
    prefix_of,
    record_code_sent,
    record_code_verified,
    remove_verification_listener,
    resume_verification,
    set_settings,
    start_verification,
)

__all__ = [
    "PREFIX_DIGITS",
    "MessageError",
    "TooManyAttempts",
    "VerificationEvent",
    "VerifyError",
    "VerifyExpired",
    "VerifyMismatch",
    "VerifyUsed",
    "add_verification_listener",
    "check_verification",
    "conversion",
    "get_message",
    "get_settings",
    "get_verification",
    "list_messages",
    "metadata",
    "notify",
    "prefix_of",
    "record_code_sent",
    "record_code_verified",
    "remove_verification_listener",
    "resume_message",
    "resume_verification",
    "send_message",
    "set_settings",
    "start_verification",
]
