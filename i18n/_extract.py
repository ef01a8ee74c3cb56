"""Keeps the catalogue in step with the UIs: the message ids of their templates, Python and scripts.

``python -m smsguard.i18n update`` adds new ids (untranslated: fill in their ``msgstr``) and drops ids no source
uses any more; ``python -m smsguard.i18n check`` lists what is missing or untranslated (exit 1), as tests/i18n does.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

from ._catalogue import PO_FILE

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("console", "review_ui", "webauth", "review/_service.py")
"""The folders of the web UIs (add a new UI's folder here), and the review service whose outcome messages the
workbench shows."""
METHODS = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**/static/**.js", "javascript"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"trimmed": "true"}}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extract(root: Path = ROOT) -> Catalog:
    """Every message id the UIs use, with where (file) it is used."""
    template = Catalog(locale=None, project="smsguard", fuzzy=False)
    for source in SOURCES:
        if source.endswith(".py"):  # one module of a package that is not a UI
            found = ((source, *m) for m in extract_from_file("python", root / source, strip_comment_tags=True))
        else:
            found = (
                (f"{source}/{name}", *rest)
                for name, *rest in extract_from_dir(
                    root / source, METHODS, options_map=OPTIONS, strip_comment_tags=True
                )
            )
        for filename, lineno, message, comments, context in found:
            template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def read(path: Path = PO_FILE) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale="zh_CN")


def problems(catalog: Catalog, template: Catalog) -> list[str]:
    """What stops the catalogue from covering the UIs: an id without its entry, an empty or fuzzy one, a
    placeholder the translation lost or invented."""
    out = []
    for m in template:
        if not m.id:
            continue
        entry = catalog.get(m.id, m.context)
        where = ", ".join(loc for loc, _ in m.locations[:2])
        if entry is None:
            out.append(f"missing: {m.id!r} ({where})")
            continue
        strings = entry.string if isinstance(entry.string, tuple | list) else (entry.string,)
        if entry.fuzzy or not all(strings):
            out.append(f"untranslated: {m.id!r} ({where})")
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        wanted = set(PLACEHOLDER.findall(" ".join(ids))) - {"num"}
        for s in strings:
            if set(PLACEHOLDER.findall(s)) - {"num"} != wanted:
                out.append(f"placeholders differ: {m.id!r} → {s!r}")
    return out


def update(path: Path = PO_FILE) -> int:
    """Merge the sources' ids into the catalogue file; returns how many are new."""
    template = extract()
    catalog = read(path) if path.exists() else Catalog(locale="zh_CN", project="smsguard")
    before = {m.id for m in catalog if m.id}
    if path.exists():  # the header's date moves only when the file is new: an update changes only the messages
        template.creation_date = catalog.creation_date
    catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
    catalog.obsolete.clear()
    buf = io.BytesIO()
    write_po(buf, catalog, width=120, sort_output=True, include_lineno=False, ignore_obsolete=True, omit_header=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return len({m.id for m in catalog if m.id} - before)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "check"
    if command == "update":
        print(f"{update()} new message(s) in {PO_FILE.relative_to(ROOT)}")
        command = "check"
    if command != "check":
        print("usage: python -m smsguard.i18n [update|check]", file=sys.stderr)
        return 2
    found = problems(read(), extract())
    for p in found:
        print(p)
    return 1 if found else 0
