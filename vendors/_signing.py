"""Request signatures of the two vendor APIs, checked exactly as their SDKs build them (pure: no I/O).

* Tencent Cloud API 3.0, ``TC3-HMAC-SHA256`` (tencentcloud-sdk-python-common ``_get_tc3_signature``)::

      CanonicalRequest = POST \\n / \\n (query) \\n content-type:…\\nhost:…\\n \\n content-type;host
                         \\n hex(sha256(body))
      StringToSign     = TC3-HMAC-SHA256 \\n X-TC-Timestamp \\n <date>/sms/tc3_request \\n hex(sha256(CanonicalRequest))
      key = HMAC(HMAC(HMAC("TC3" + SecretKey, date), "sms"), "tc3_request")

  The canonical URI is ``/`` (the SDK's request path, whatever path the request reached), header names and
  values lower-cased and trimmed. A payload sent as ``UNSIGNED-PAYLOAD`` is refused: the body would not be
  covered. The timestamp must be within 5 minutes of ours (Tencent's window) and the scope's date its date.
* Aliyun V3, ``ACS3-HMAC-SHA256`` (alibabacloud_tea_openapi ``Utils.get_authorization``, the SDK default)::

      CanonicalRequest = METHOD \\n / \\n sorted query, RFC 3986 encoded \\n signed headers \\n names
                         \\n x-acs-content-sha256
      StringToSign     = ACS3-HMAC-SHA256 \\n hex(sha256(CanonicalRequest))

  ``x-acs-content-sha256`` must be the body's hash; host, x-acs-action, x-acs-date and x-acs-signature-nonce
  must be signed; the date within 15 minutes; the nonce is checked for reuse by the caller.
* Aliyun RPC, ``HMAC-SHA1`` signature version 1.0 (the SDK with ``signature_algorithm="v2"``)::

      StringToSign = METHOD & %2F & percent(sorted "k=v" of query + form, RFC 3986)
      Signature    = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

from smsguard.core import UnauthenticatedError

TENCENT_WINDOW = 300  # seconds either way: Tencent's AuthFailure.SignatureExpire bound
ALIYUN_WINDOW = 900  # seconds: Aliyun's timestamp and nonce window (15 minutes)


class SignatureError(UnauthenticatedError):
    """``kind``: ``malformed`` | ``unknown_key`` | ``mismatch`` | ``expired`` | ``nonce`` (each vendor module
    names it in its vendor's codes)."""

    code = "vendor.signature"

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, where="header Authorization", code=f"vendor.signature.{kind}")
        self.kind = kind


# -- Tencent TC3 ------------------------------------------------------------------------------------------

_TC3 = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/\s,]{1,64})/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request"
    r",\s*SignedHeaders=(?P<headers>[a-z0-9;\-]{1,500}),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Tc3Auth:
    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_tc3(authorization: str | None) -> Tc3Auth:
    m = _TC3.match(authorization or "")
    if m is None:
        raise SignatureError("malformed", "Authorization is not a TC3-HMAC-SHA256 credential")
    return Tc3Auth(m["id"], m["date"], m["service"], tuple(m["headers"].split(";")), m["sig"])


def tc3_signature(secret_key: str, *, method: str, query: str, headers: Mapping[str, str],
                  signed_headers: Sequence[str], timestamp: str, date: str, service: str, body: bytes) -> str:
    canonical_headers = "".join(f"{h}:{headers.get(h, '').strip().lower()}\n" for h in signed_headers)
    canonical = "\n".join([method, "/", query, canonical_headers, ";".join(signed_headers),
                           hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(["TC3-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify_tc3(auth: Tc3Auth, secret_key: str, *, method: str, query: str, headers: Mapping[str, str],
               body: bytes, now: float) -> None:
    """``headers``: lower-case names. Raises SignatureError."""
    ts = headers.get("x-tc-timestamp", "")
    if not ts.isascii() or not ts.isdigit() or len(ts) > 12:
        raise SignatureError("malformed", "X-TC-Timestamp must be a Unix time in seconds")
    if abs(int(ts) - now) > TENCENT_WINDOW:
        raise SignatureError("expired", f"X-TC-Timestamp is more than {TENCENT_WINDOW} s from the server's time")
    if datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%d") != auth.date:
        raise SignatureError("mismatch", "the credential scope's date is not the date of X-TC-Timestamp")
    if auth.service != "sms":
        raise SignatureError("mismatch", "the credential scope's service must be sms")
    if not {"content-type", "host"} <= set(auth.signed_headers):
        raise SignatureError("malformed", "SignedHeaders must include content-type and host")
    if headers.get("x-tc-content-sha256", "").upper() == "UNSIGNED-PAYLOAD":
        raise SignatureError("mismatch", "UNSIGNED-PAYLOAD is not accepted: the body must be signed")
    expected = tc3_signature(secret_key, method=method, query=query, headers=headers,
                             signed_headers=auth.signed_headers, timestamp=ts, date=auth.date,
                             service=auth.service, body=body)
    if not hmac.compare_digest(expected, auth.signature):
        raise SignatureError("mismatch", "the request signature does not match (TC3-HMAC-SHA256)")


# -- Aliyun V3 (ACS3-HMAC-SHA256) -------------------------------------------------------------------------

_ACS3 = re.compile(
    r"^ACS3-HMAC-SHA256 Credential=(?P<id>[^,\s]{1,64}),SignedHeaders=(?P<headers>[a-z0-9;\-]{1,1000})"
    r",Signature=(?P<sig>[0-9a-f]{64})$"
)
ACS3_REQUIRED = ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce")


@dataclasses.dataclass(frozen=True, slots=True)
class Acs3Auth:
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_acs3(authorization: str | None) -> Acs3Auth:
    m = _ACS3.match(authorization or "")
    if m is None:
        raise SignatureError("malformed", "Authorization is not an ACS3-HMAC-SHA256 credential")
    return Acs3Auth(m["id"], tuple(m["headers"].split(";")), m["sig"])


def _rfc3986(value: str) -> str:
    return quote(value, safe="~", encoding="utf-8")


def acs3_signature(secret: str, *, method: str, path: str, query: Sequence[tuple[str, str]],
                   headers: Mapping[str, Sequence[str]], signed_headers: Sequence[str], payload_hash: str) -> str:
    canonical_query = "&".join(f"{k}={_rfc3986(v)}" for k, v in sorted(query))
    canonical_headers = "".join(
        f"{h}:{','.join(sorted(v.strip() for v in headers.get(h, ())))}\n" for h in signed_headers
    )
    canonical = "\n".join([method, path or "/", canonical_query, canonical_headers, ";".join(signed_headers),
                           payload_hash])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def parse_utc(value: str) -> float | None:
    """``2026-12-03T10:00:00Z`` (the SDKs' format) as a Unix time; None when it is not that."""
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def verify_acs3(auth: Acs3Auth, secret: str, *, method: str, path: str, query: Sequence[tuple[str, str]],
                headers: Mapping[str, Sequence[str]], body: bytes, now: float) -> None:
    """``headers``: lower-case names to every value received. Raises SignatureError."""
    signed = set(auth.signed_headers)
    missing = [h for h in ACS3_REQUIRED if h not in signed]
    if missing or list(auth.signed_headers) != sorted(signed):
        raise SignatureError("malformed", "SignedHeaders must be sorted and include " + ", ".join(ACS3_REQUIRED))
    if len(set(query)) != len(query) or len({k for k, _ in query}) != len(query):
        raise SignatureError("malformed", "a query parameter is repeated")
    at = parse_utc(_one(headers, "x-acs-date"))
    if at is None:
        raise SignatureError("malformed", "x-acs-date must be yyyy-MM-ddTHH:mm:ssZ")
    if abs(at - now) > ALIYUN_WINDOW:
        raise SignatureError("expired", f"x-acs-date is more than {ALIYUN_WINDOW // 60} minutes from the server's time")
    payload_hash = _one(headers, "x-acs-content-sha256")
    if not hmac.compare_digest(payload_hash, hashlib.sha256(body).hexdigest()):
        raise SignatureError("mismatch", "x-acs-content-sha256 is not the SHA-256 of the body")
    expected = acs3_signature(secret, method=method, path=path, query=query, headers=headers,
                              signed_headers=auth.signed_headers, payload_hash=payload_hash)
    if not hmac.compare_digest(expected, auth.signature):
        raise SignatureError("mismatch", "the request signature does not match (ACS3-HMAC-SHA256)")


def _one(headers: Mapping[str, Sequence[str]], name: str) -> str:
    values = headers.get(name, ())
    return values[0] if len(values) == 1 else ""


# -- Aliyun RPC (HMAC-SHA1) -------------------------------------------------------------------------------


def rpc_signature(secret: str, *, method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(f"{_rfc3986(k)}={_rfc3986(params[k])}" for k in sorted(params) if k != "Signature")
    to_sign = f"{method}&%2F&{quote_plus(canonical, safe='~', encoding='utf-8')}"
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_rpc(secret: str, *, method: str, params: Mapping[str, str], now: float) -> None:
    """``params``: the query and form parameters together. Raises SignatureError."""
    if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
        raise SignatureError("malformed", "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0")
    at = parse_utc(params.get("Timestamp", ""))
    if at is None:
        raise SignatureError("malformed", "Timestamp must be yyyy-MM-ddTHH:mm:ssZ")
    if abs(at - now) > ALIYUN_WINDOW:
        raise SignatureError("expired", f"Timestamp is more than {ALIYUN_WINDOW // 60} minutes from the server's time")
    if not params.get("SignatureNonce"):
        raise SignatureError("malformed", "SignatureNonce is required")
    expected = rpc_signature(secret, method=method, params=params)
    if not hmac.compare_digest(expected.encode(), params.get("Signature", "").encode()):
        raise SignatureError("mismatch", "the request signature does not match (HMAC-SHA1)")
