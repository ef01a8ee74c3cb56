"""A verdict's reasons drawn on the text they point at, as safe HTML.

One implementation for every page: server-rendered pages call it from Jinja and the JSON preview endpoint
returns its output, so the browser never re-implements span logic (it only sets the returned, escaped HTML).
Spans index the ORIGINAL text (engine contract); overlapping reasons split the text at every boundary and each
piece is marked with the worst severity covering it. Reasons without a span (an opt-out instruction that is
missing, a message that is too long) are drawn as a marker at the end of the text, where the fix goes. Reasons
whose action is ``pass`` are information, not violations, and are not drawn at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

from markupsafe import Markup, escape

_SEVERITY = {"low": 0, "medium": 1, "high": 2}
_ACTION = {"pass": 0, "review": 1, "block": 2}


def _attr(values: Iterable[str]) -> str:
    return " ".join(dict.fromkeys(values))


def highlight(text: str, reasons: Iterable[Mapping[str, Any]]) -> Markup:
    # a "pass" reason (the classifier's informational score on declared marketing) is no violation: not drawn
    reasons = [r for r in reasons if r.get("action") != "pass"]
    spans = [r for r in reasons if isinstance(r.get("start"), int) and isinstance(r.get("end"), int)
             and 0 <= r["start"] < r["end"] <= len(text)]
    bounds = sorted({0, len(text), *(r["start"] for r in spans), *(r["end"] for r in spans)})
    out: list[str] = []
    for a, b in pairwise(bounds):
        piece = escape(text[a:b])
        covering = [r for r in spans if r["start"] <= a and b <= r["end"]]
        if not covering:
            out.append(str(piece))
            continue
        worst = max(covering, key=lambda r: (_ACTION.get(r.get("action", ""), 0), _SEVERITY.get(r.get("severity"), 0)))
        title = "; ".join(f"{r.get('code')}: {r.get('message') or ''}" for r in covering)
        out.append(
            f'<mark class="hit sev-{escape(worst.get("severity") or "")} act-{escape(worst.get("action") or "")}"'
            f' data-codes="{escape(_attr(str(r.get("code")) for r in covering))}" title="{escape(title)}">'
            f"{piece}</mark>"
        )
    for r in reasons:
        if r in spans:
            continue
        out.append(
            f'<mark class="hit missing sev-{escape(r.get("severity") or "")} act-{escape(r.get("action") or "")}"'
            f' data-codes="{escape(r.get("code") or "")}" title="{escape(r.get("message") or "")}">'
            f'⟵ {escape(r.get("code") or "")}</mark>'
        )
    return Markup("".join(out))
