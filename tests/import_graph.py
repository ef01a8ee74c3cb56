"""The production code's imports, read with ``ast`` (nothing is imported): what the shape tests walk."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from smsguard.core import PROJECT_ROOT

# folder → the package it installs as (pyproject's package-dir)
PACKAGES = {
    "smsguard": "smsguard", "core": "smsguard.core", "runtime": "smsguard.runtime", "engine": "smsguard.engine",
    "phones": "smsguard.phones",
    "api": "smsguard.api", "review": "smsguard.review", "review_ui": "smsguard.review_ui",
    "storage": "smsguard.storage", "training": "smsguard.training", "sending": "smsguard.sending",
    "audit": "smsguard.audit", "batches": "smsguard.batches", "console": "smsguard.console",
    "filing": "smsguard.filing",
    "webauth": "smsguard.webauth", "messages": "smsguard.messages", "vendors": "smsguard.vendors",
    "webhooks": "smsguard.webhooks", "pumping": "smsguard.pumping", "billing": "smsguard.billing",
    "i18n": "smsguard.i18n",
}


@dataclass(frozen=True, slots=True)
class Import:
    path: str  # file, relative to the repository
    line: int
    source: str  # the importing module, e.g. smsguard.api._app
    target: str  # the imported module, e.g. smsguard.batches._tables
    type_checking: bool  # under `if TYPE_CHECKING:` (no run-time arrow)


def production_files() -> Iterator[tuple[str, Path]]:
    for folder, package in PACKAGES.items():
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            rel = path.relative_to(PROJECT_ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if "migrations" in parts:
                continue
            yield ".".join([package, *parts]), path


def _resolve(module: str, path: Path, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports() -> Iterator[Import]:
    for module, path in production_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for sub in ast.walk(node):
                    guarded.add(id(sub))
        rel = path.relative_to(PROJECT_ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(rel, node.lineno, module, alias.name, id(node) in guarded)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, path, node.level, node.module)
                for alias in node.names:  # `from smsguard import batches` imports the package smsguard.batches
                    full = f"{target}.{alias.name}"
                    yield Import(rel, node.lineno, module, full if _is_module(full) else target,
                                 id(node) in guarded)


def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "smsguard":
        return False
    folder = {v: k for k, v in PACKAGES.items()}
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        if head in folder:
            rest = parts[i:]
            base = PROJECT_ROOT / folder[head]
            return not rest or (base / Path(*rest)).with_suffix(".py").exists() or (base / Path(*rest)).is_dir()
    return False


def package_of(module: str) -> str | None:
    """The top-level package (smsguard.engine, …) a module belongs to; the CLI counts as ``smsguard``."""
    best = None
    for package in PACKAGES.values():
        if (module == package or module.startswith(package + ".")) and (best is None or len(package) > len(best)):
            best = package
    return best
