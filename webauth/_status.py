"""The one table from error kinds to HTTP statuses, used at the HTTP edge: the API's exception handler and
both web UIs. The exception tree itself (``smsguard.core``) knows nothing of HTTP."""

from __future__ import annotations

from smsguard.core import (
    ConfigError,
    ConflictError,
    ExternalError,
    ForbiddenError,
    InputError,
    LimitError,
    NotFoundError,
    QuotaError,
    SmsguardError,
    UnauthenticatedError,
    UnavailableError,
)

# The most specific kind first is not needed: the error's MRO is walked, nearest class first.
HTTP_STATUS: dict[type[SmsguardError], int] = {
    InputError: 400,
    UnauthenticatedError: 401,
    QuotaError: 402,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    ConfigError: 422,
    LimitError: 429,
    ExternalError: 502,
    UnavailableError: 503,
}
DEFAULT_STATUS = 400
"""An error of this project that is none of the kinds above is the client's input, as far as HTTP can tell."""


def http_status(exc: SmsguardError) -> int:
    for cls in type(exc).__mro__:
        status = HTTP_STATUS.get(cls)
        if status is not None:
            return status
    return DEFAULT_STATUS


def http_headers(exc: SmsguardError) -> dict[str, str] | None:
    """What the status needs besides the body: ``Retry-After`` for a limit, the auth scheme for a 401."""
    if isinstance(exc, UnauthenticatedError):
        return {"WWW-Authenticate": 'Bearer realm="smsguard"'}
    retry_after = getattr(exc, "retry_after", None)  # a limit, or a 409 that will pass (idempotency.in_progress)
    if isinstance(retry_after, int) and retry_after >= 0:
        return {"Retry-After": str(retry_after)}
    return None
