"""The message catalogue: ``locale/zh_CN/LC_MESSAGES/messages.po`` read with Babel into a dictionary, once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.pofile import read_po

HERE = Path(__file__).resolve().parent
PO_FILE = HERE / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"


@dataclass
class Catalogue:
    """The Chinese of every message id; plural ids are keyed by their singular (Chinese has one form)."""

    path: Path = PO_FILE
    _messages: dict[str, str] | None = None
    _js: frozenset[str] = frozenset()
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _load(self) -> dict[str, str]:
        with self._lock:
            if self._messages is None:
                with self.path.open("rb") as f:
                    catalog = read_po(f)
                messages, js = {}, set()
                for m in catalog:
                    if not m.id or m.fuzzy:  # the header; a fuzzy guess is not a translation
                        continue
                    key = m.id[0] if isinstance(m.id, tuple) else m.id
                    text = m.string[0] if isinstance(m.string, tuple | list) else m.string
                    if text:
                        messages[key] = text
                        if any(loc.endswith(".js") for loc, _ in m.locations):
                            js.add(key)
                self._js = frozenset(js)
                self._messages = messages
            return self._messages

    def zh(self, msgid: str) -> str:
        """The Chinese of ``msgid`` (the id itself when it has none: English shows rather than nothing)."""
        return self._load().get(msgid, msgid)

    def js(self) -> dict[str, str]:
        """The messages the UIs' scripts use (the catalogue's entries found in ``*.js``), for the page to carry."""
        messages = self._load()
        return {k: messages[k] for k in sorted(self._js)}


CATALOGUE = Catalogue()


def js_messages(language: str) -> dict[str, str]:
    """What a page embeds for its script's ``_()``: nothing in English (the ids are the English)."""
    return CATALOGUE.js() if language.startswith("zh") else {}
