"""The web UIs' languages (issue 19 point 4): Simplified Chinese by default, English on request, one catalogue.

The English text is the message id; ``locale/zh_CN/LC_MESSAGES/messages.po`` holds its Chinese, read once per
process with Babel (no compiled ``.mo`` to keep in step: a fresh clone works as it is). A request's language is
its ``sg_lang`` cookie (set by the switch, ``POST {ui}/language``), else its ``Accept-Language``, else zh-CN.

    middleware=[i18n.language_middleware, ...]      # on the UI's router: the request's language for the call
    i18n.install(jinja_env)                         # {{ _("Batches") }} / {% trans %} in templates
    request.session["flash"] = _("batch #%(id)s created", id=b["id"])   # in Python: from smsguard.i18n import _
    route_handlers=[i18n.language_switch("/console"), ...]

Templates, ``*.py`` and ``static/*.js`` of the UIs are scanned by ``python -m smsguard.i18n update`` (see
docs/i18n.md); tests/i18n checks that every message has its Chinese.
"""

from pathlib import Path

from ._catalogue import CATALOGUE, Catalogue, js_messages
from ._language import (
    COOKIE,
    DEFAULT_LANGUAGE,
    LANGUAGES,
    N_,
    _,
    current_language,
    gettext,
    install,
    language_middleware,
    language_of,
    language_switch,
    ngettext,
    use_language,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
"""Add to the UI's template directories: ``{% from "i18n/switch.html" import language_switch %}``."""

__all__ = [
    "CATALOGUE",
    "COOKIE",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "N_",
    "TEMPLATES",
    "Catalogue",
    "_",
    "current_language",
    "gettext",
    "install",
    "js_messages",
    "language_middleware",
    "language_of",
    "language_switch",
    "ngettext",
    "use_language",
]
