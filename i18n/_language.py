"""A request's language: chosen once per request (cookie, then Accept-Language, then zh-CN), held in a context
variable for the call (worker threads inherit it through anyio), and read by ``gettext`` and the templates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from http.cookies import SimpleCookie
from typing import Any

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect
from markupsafe import Markup

from ._catalogue import CATALOGUE

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
COOKIE = "sg_lang"
COOKIE_MAX_AGE = 365 * 86400
_current: ContextVar[str] = ContextVar("smsguard_language", default="en")
"""English (the message ids) outside a UI request: the API, the CLI and the workers keep their messages as they
were; a UI's ``language_middleware`` sets the request's language (zh-CN unless told otherwise)."""


def current_language() -> str:
    return _current.get()


@contextlib.contextmanager
def use_language(language: str) -> Iterator[None]:
    token = _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def _match(tag: str) -> str | None:
    primary = tag.strip().lower().split("-")[0]
    return "zh-CN" if primary == "zh" else "en" if primary == "en" else None


def _from_accept(header: str) -> str | None:
    """The first language of ``Accept-Language`` by weight that we have (any zh-* is Simplified Chinese here)."""
    ranked = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag.strip() and q > 0:
            ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        found = _match(tag)
        if found:
            return found
    return None


def language_of(headers: dict[str, str]) -> str:
    """``headers`` as lower-case names: the ``sg_lang`` cookie, else Accept-Language, else zh-CN."""
    cookie = SimpleCookie()
    with contextlib.suppress(Exception):
        cookie.load(headers.get("cookie", ""))
    chosen = cookie.get(COOKIE)
    if chosen is not None and chosen.value in LANGUAGES:
        return chosen.value
    return _from_accept(headers.get("accept-language", "")) or DEFAULT_LANGUAGE


def language_middleware(app: Any) -> Any:
    """ASGI middleware for a UI's router: the request's language for everything the call does."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        with use_language(language_of(headers)):
            await app(scope, receive, send)

    return middleware


def _translate(message: str) -> str:
    return CATALOGUE.zh(message) if _current.get().startswith("zh") else message


def _translate_plural(singular: str, plural: str, n: int) -> str:
    return CATALOGUE.zh(singular) if _current.get().startswith("zh") else singular if n == 1 else plural


def gettext(message: str, **values: Any) -> str:
    """``message`` in the request's language, ``%(name)s`` filled from ``values`` (when given)."""
    text = _translate(message)
    return text % values if values else text


_ = gettext


def N_(message: str) -> str:
    """Marks ``message`` for the catalogue where it is defined; it is translated where it is shown."""
    return message


def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
    """One of two English forms by ``n`` (``%(num)s``); Chinese has one."""
    return _translate_plural(singular, plural, n) % {"num": n, **values}


def install(env: Any) -> None:
    """Jinja's i18n extension on ``env`` with this module's callables (new style: ``_("%(n)s left", n=3)``), and
    ``language`` / ``js_messages`` for the page's ``<html lang>`` and its script."""
    from ._catalogue import js_messages

    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # as the extractor reads {% trans %} blocks (OPTIONS in _extract)
    # Jinja formats the result itself (new style), so it is given the unformatted lookups
    env.install_gettext_callables(gettext=_translate, ngettext=_translate_plural, newstyle=True)
    env.globals["language"] = current_language
    env.globals["js_messages"] = lambda: Markup(_json_for_script(js_messages(current_language())))


def _json_for_script(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def language_switch(path: str) -> HTTPRouteHandler:
    """``POST {path}/language`` (a CSRF form: ``lang``, ``next``): the cookie, then back to ``next`` under ``path``."""

    @post("/language", include_in_schema=False, status_code=303)
    async def switch_language(request: Request) -> Response:
        form = await request.form()
        lang = str(form.get("lang") or "")
        nxt = str(form.get("next") or path)
        if not nxt.startswith(path) or nxt.startswith("//"):  # no open redirects
            nxt = path
        response = Redirect(nxt, status_code=303)
        if lang in LANGUAGES:
            response.set_cookie(COOKIE, lang, max_age=COOKIE_MAX_AGE, path="/", samesite="lax", httponly=True)
        return response

    return switch_language
