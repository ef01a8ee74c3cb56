"""The JSON body decoder of the API: strict, typed, and a 400 with ``code``, ``message``, ``where`` for any body.

Litestar decodes a body to plain Python and then converts it to the handler's type in non-strict mode (needed
for query strings), which takes ``"content_only": 0`` for a bool, and it lets a ``UnicodeDecodeError`` (invalid
UTF-8, CESU-8 surrogates) or a ``RecursionError`` (deeply nested arrays) escape as a 500. Here the body is
decoded once, straight into the handler's ``data`` type, with JSON's own types only; the handler gets the
decoded value as is (msgspec's conversion passes an instance of the target type through unchanged).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.handlers import HTTPRouteHandler
from litestar.types import Empty

from smsguard.core import SmsguardError

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects a body may have; no request type of the API nests more than 4."""

_AT = re.compile(r" - at `(?P<path>\$[^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")


class BodyError(SmsguardError):
    """The request body is not JSON of the documented type; ``where`` is a JSON path (``$.messages[3].text``)."""

    code = "input.schema"


def decode_body(body: bytes, target: Any = Any) -> Any:
    """``body`` decoded as JSON into ``target`` (strict: no ``0`` for ``false``, no ``"1"`` for ``1``), else a
    BodyError naming where."""
    _check_depth(body)
    try:
        return msgspec.json.decode(body, type=target, strict=True)
    except UnicodeDecodeError:
        raise BodyError(_bad_utf8(body), where="$", code="input.encoding") from None
    except RecursionError:  # _check_depth makes this unreachable for JSON; kept so it can never be a 500
        raise BodyError(f"nested deeper than {MAX_DEPTH} levels", where="$", code="input.json_depth") from None
    except msgspec.ValidationError as e:
        message, where = _message_and_path(str(e))
        raise BodyError(message, where=where) from None
    except msgspec.DecodeError as e:
        raise BodyError(str(e), where="$", code="input.json") from None


def _check_depth(body: bytes) -> None:
    """Refuse nesting deeper than MAX_DEPTH before decoding: a cheap scan (brackets inside strings are skipped)."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return  # the common case: too few brackets to nest that deep
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                raise BodyError(f"nested deeper than {MAX_DEPTH} levels", where="$", code="input.json_depth")
        elif byte in _CLOSE:
            depth -= 1


def _bad_utf8(body: bytes) -> str:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not valid UTF-8 at byte {e.start} ({body[e.start:e.start + 4]!r}): {e.reason}"
    return "not valid UTF-8"  # pragma: no cover - msgspec found what Python's decoder did not


def _message_and_path(message: str) -> tuple[str, str]:
    """msgspec's "Expected `bool`, got `int` - at `$.content_only`" → (the message, ``$.content_only``); an unknown
    field is named in the path (``$.messages[0].colour``)."""
    where = "$"
    if m := _AT.search(message):
        message, where = message[: m.start()], m["path"]
    if m := _UNKNOWN.search(message):
        name = m["name"]
        where += f".{name}" if name.isidentifier() else f"[{msgspec.json.encode(name).decode()}]"
    return message, where


def _body_type(handler: HTTPRouteHandler) -> Any:
    data = handler.parsed_fn_signature.parameters.get("data")
    return Any if data is None else data.annotation


class ApiRequest(Request):
    """A litestar Request whose ``json()`` is ``decode_body`` into the handler's ``data`` type."""

    async def json(self) -> Any:
        if self._json is Empty:
            if (decoded := self._connection_state.json) is Empty:
                body = await self.body()
                decoded = decode_body(body or b"null", _body_type(self.route_handler))
                self._connection_state.json = decoded
            self._json = decoded
        return self._json
