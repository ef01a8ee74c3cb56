"""The shape of the code, pinned: who may read the environment, which way imports point, and which private
modules of other packages are still imported (a list that may only shrink)."""

from __future__ import annotations

import ast
from collections import defaultdict

import import_graph as graph
import pytest

from smsguard.core import PROJECT_ROOT

ENV_ALLOWED = {"core/_settings.py"}


def test_only_core_settings_touch_the_environment() -> None:
    offenders = []
    for _, path in graph.production_files():
        rel = path.relative_to(PROJECT_ROOT).as_posix()
        if rel in ENV_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = ast.unparse(node) if isinstance(node, ast.Attribute | ast.Name) else ""
            if text in ("os.environ", "os.getenv", "environ", "getenv", "os.putenv"):
                offenders.append(f"{rel}:{node.lineno}: {text}")
    assert offenders == [], "read settings through smsguard.core, not the environment"


# Package-level circles that remain (none): shrink this, never grow it.
KNOWN_CIRCLES: set[frozenset[str]] = set()


def _package_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in graph.imports():
        if imp.type_checking:
            continue
        a, b = graph.package_of(imp.source), graph.package_of(imp.target)
        if a and b and a != b:
            edges[a].add(b)
    return edges


def test_no_import_circles_between_packages() -> None:
    edges = _package_edges()
    circles = set()
    for a, targets in edges.items():
        for b in targets:
            if a in _reachable(edges, b):
                circles.add(frozenset({a, b}))
    assert circles - KNOWN_CIRCLES == set()
    assert circles >= KNOWN_CIRCLES, "a known circle is gone: remove it from KNOWN_CIRCLES"


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize(("floor", "above"), [
    ("smsguard.core", {"*"}),  # the ground floor imports nothing of the project
    ("smsguard.engine", {"smsguard.core"}),  # pure: no SQL, no Redis, no network
    ("smsguard.sending", {"smsguard.core"}),
])
def test_the_lower_floors_import_nothing_above_them(floor: str, above: set[str]) -> None:
    allowed = set() if above == {"*"} else above
    assert _package_edges().get(floor, set()) <= allowed


def test_only_the_composition_root_and_the_front_doors_import_the_runtime() -> None:
    users = {a for a, targets in _package_edges().items() if "smsguard.runtime" in targets}
    assert users <= {"smsguard", "smsguard.api", "smsguard.console", "smsguard.review_ui"}


# Production imports of another package's private module (32 when issue 14 was filed): a shrinking allow-list.
PRIVATE_IMPORTS = {
    ("api/_channels.py", "smsguard.batches._settle"),
    ("api/_channels.py", "smsguard.sending._channels"),
    ("api/_service.py", "smsguard.audit._shadow"),
    ("api/_service.py", "smsguard.audit._versions"),
    ("audit/_replay.py", "smsguard.storage._models"),
    ("audit/_shadow.py", "smsguard.storage._models"),
    ("audit/_tables.py", "smsguard.storage._models"),
    ("console/_data.py", "smsguard.batches._tables"),
    ("console/_routes.py", "smsguard.batches._tables"),
    ("console/_routes.py", "smsguard.review._tables"),
    ("review/_service.py", "smsguard.storage._models"),
    ("review/_tables.py", "smsguard.storage._models"),
    ("review_ui/_routes.py", "smsguard.review._queue"),
    ("review_ui/_routes.py", "smsguard.review._service"),
    ("review_ui/_routes.py", "smsguard.review._stats"),
    ("review_ui/_routes.py", "smsguard.review._tables"),
    ("review_ui/_routes.py", "smsguard.review._users"),
    ("smsguard/_roles.py", "smsguard.batches._settle"),
    ("smsguard/_roles.py", "smsguard.sending._gateway_role"),
    ("smsguard/commands/audit.py", "smsguard.audit._signing"),
    ("smsguard/commands/audit.py", "smsguard.audit._tables"),
    ("smsguard/commands/batch.py", "smsguard.batches._common"),
    ("smsguard/commands/channel.py", "smsguard.batches._common"),
    ("smsguard/commands/channel.py", "smsguard.batches._settle"),
    ("smsguard/commands/channel.py", "smsguard.sending._channels"),
    ("smsguard/commands/channel.py", "smsguard.sending._gateway_role"),
    ("smsguard/commands/console.py", "smsguard.batches._settle"),
    ("smsguard/commands/console.py", "smsguard.batches._tables"),
    ("smsguard/commands/console.py", "smsguard.console._users"),
    ("smsguard/commands/console.py", "smsguard.sending._channels"),
    ("smsguard/commands/console.py", "smsguard.sending._gateway_role"),
    ("smsguard/commands/lexicon.py", "smsguard.engine._lexicon"),
    ("smsguard/commands/lexicon.py", "smsguard.engine._lexicon_lint"),
    ("smsguard/commands/review.py", "smsguard.review._users"),
    ("smsguard/commands/serve.py", "smsguard.sending._channels"),
    ("training/data.py", "smsguard.engine._features"),
    ("training/run.py", "smsguard.engine._features"),
    ("training/run.py", "smsguard.engine._onnx_classifier"),
    ("webauth/_throttle.py", "smsguard.storage._models"),
}


def test_no_new_imports_of_another_packages_private_modules() -> None:
    found = set()
    for imp in graph.imports():
        a, b = graph.package_of(imp.source), graph.package_of(imp.target)
        if b and a != b and any(p.startswith("_") for p in imp.target[len(b) + 1:].split(".") if p):
            found.add((imp.path, imp.target))
    assert found - PRIVATE_IMPORTS == set(), "import the package's public name instead (add it to its __all__)"
    assert PRIVATE_IMPORTS - found == set(), "fixed: remove these from PRIVATE_IMPORTS"
