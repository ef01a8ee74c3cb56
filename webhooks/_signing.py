"""Webhook signatures: HMAC-SHA256 over ``f"{timestamp}.".encode() + body``, hex, in one header::

    X-Smsguard-Signature: t=1764756000,v1=5f0c…[,v1=<signature with the previous secret>]

During a secret rotation every request carries one ``v1`` per secret still accepted (the new one first), so
a receiver that has not yet switched keeps verifying. ``verify`` is what a receiver runs (README has the
same few lines to copy): any ``v1`` matching, compared in constant time, and a timestamp not older than the
replay window (5 minutes).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "X-Smsguard-Signature"
EVENT_ID_HEADER = "X-Smsguard-Event-Id"
EVENT_TYPE_HEADER = "X-Smsguard-Event-Type"
ATTEMPT_HEADER = "X-Smsguard-Attempt"
REPLAY_WINDOW = 300  # seconds: receivers reject older timestamps


def compute(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={compute(s, timestamp, body)}" for s in secrets)])


def verify(header: str, body: bytes, secret: str, *, tolerance: int = REPLAY_WINDOW, now: float | None = None) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance`` seconds."""
    ts, sigs = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            ts = int(value)
        elif key == "v1":
            sigs.append(value)
    if ts is None or abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    expected = compute(secret, ts, body)
    return any(hmac.compare_digest(expected, s) for s in sigs)
