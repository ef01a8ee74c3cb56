"""Times given on the command line."""

from __future__ import annotations

from datetime import UTC, datetime

from smsguard.core import InputError


def aware_time(value: str, *, expected: str, where: str, code: str) -> datetime:
    """``value`` as an ISO 8601 date/time, in UTC when it names no zone; otherwise an error that says it is not
    ``expected`` (e.g. "an id or ISO 8601 date/time"), naming ``where`` and ``code``."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"not {expected}: {value!r}", where=where, code=code) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
