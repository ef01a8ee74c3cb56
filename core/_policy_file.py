"""policy.yaml, the one file several packages read: how a package takes its typed section out of it.

Each package that reads the policy owns its part: the engine the screening keys, ``batches`` the caps, quiet
hours and MO reply words, ``billing`` the prices, ``audit`` its retention, ``review`` the queue's targets. A
part is a :class:`PolicySection` (a frozen msgspec Struct that rejects unknown keys) that the package decodes
with :meth:`PolicyFile.section`, either from the top-level keys its fields name or from the mapping under one
key. Errors name the key path the way msgspec does, with mapping keys spelt out (``policy.yaml:
$.tenants.acme.thresholds.block_at``, where msgspec alone says ``$.tenants[...]``).

A package's own loader leaves the other packages' keys alone; the composed document (``smsguard.runtime``)
knows every section, so it also rejects a top-level key nobody owns (a typo must not silently disable a rule).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import msgspec

from ._errors import PolicyError

__all__ = ["PolicyFile", "PolicySection", "section_keys"]


class PolicySection(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every typed part of policy.yaml: unknown keys are errors, values are immutable."""


S = TypeVar("S", bound=msgspec.Struct)

_AT_PATH = re.compile(r"^(.*) - at `(key` in `)?(\$[^`]*)`$")
_PATH_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|(\[\.\.\.\])")
_YAML_TYPES = (datetime.datetime, datetime.date)  # what msgspec.yaml.decode lets YAML hand over as such


def section_keys(kind: type[msgspec.Struct], *, at: str | None = None) -> frozenset[str]:
    """The top-level policy.yaml keys a section decoded with ``section(kind, at=at)`` owns."""
    return frozenset({at}) if at is not None else frozenset(kind.__struct_encode_fields__)


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """The bytes of one policy.yaml and their YAML tree, read once; the sections are decoded from the tree."""

    name: str
    """The file's name, the start of every error's ``where`` (``policy.yaml: $.caps``)."""
    raw: bytes
    tree: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> PolicyFile:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise PolicyError(f"cannot read policy file: {e.strerror}", where=str(path),
                              code="policy.unreadable") from None
        return cls.parse(raw, name=path.name)

    @classmethod
    def parse(cls, raw: bytes, *, name: str = "policy.yaml") -> PolicyFile:
        try:
            tree = msgspec.yaml.decode(raw)
        except msgspec.DecodeError as e:
            raise PolicyError(f"not valid YAML: {e}", where=name, code="policy.syntax") from None
        if not isinstance(tree, dict):  # msgspec's words for it ("Expected `object`, got `null`")
            try:
                msgspec.convert(tree, dict[str, Any])
            except msgspec.ValidationError as e:
                raise PolicyError(str(e).split(" - at ")[0], where=f"{name}: $", code="policy.schema") from None
        return cls(name, raw, tree)

    def digest(self) -> str:
        """A short hash of the bytes (the screening policy's version carries it, so any edit is a new version)."""
        return hashlib.sha256(self.raw).hexdigest()[:8]

    def section(self, kind: type[S], *, at: str | None = None) -> S:
        """``kind`` decoded from the top-level keys its fields name (``at=None``) or from the mapping under the
        key ``at`` (its defaults when the key is absent). Other top-level keys are not looked at."""
        if at is None:
            fields = kind.__struct_encode_fields__
            data: Any = {k: v for k, v in self.tree.items() if k in fields}
            prefix = "$"
        elif at not in self.tree:
            data, prefix = {}, f"$.{at}"
        else:
            data, prefix = self.tree[at], f"$.{at}"
        try:
            return msgspec.convert(data, kind, builtin_types=_YAML_TYPES)
        except msgspec.ValidationError as e:
            m = _AT_PATH.match(str(e))
            message, path = (m.group(1), m.group(3)) if m else (str(e), "$")
            if m and m.group(2):
                message += " (a key)"
            if "[...]" in path:
                path = _name_keys(data, kind, path, str(e))
            raise PolicyError(message, where=f"{self.name}: {prefix}{path[1:]}", code="policy.schema") from None

    def reject_unknown(self, owned: Iterable[str]) -> None:
        """A top-level key no section owns is an error (in msgspec's words)."""
        known = set(owned)
        for key in self.tree:
            if key not in known:
                raise PolicyError(f"Object contains unknown field `{key}`", where=f"{self.name}: $",
                                  code="policy.schema")

    def fail(self, path: str, message: str) -> NoReturn:
        """Reject a value the types let through (``path`` without the leading ``$.``, e.g. ``caps.marketing[0]``)."""
        raise PolicyError(message, where=f"{self.name}: $.{path}", code="policy.value")


def _name_keys(data: Any, kind: type[msgspec.Struct], path: str, error: str) -> str:
    """msgspec writes every mapping key as ``[...]`` (``$.tenants[...].thresholds``); name the key.

    The failing entry is the first one that, kept alone in its mapping, reproduces the same error.
    Only runs on the error path (on a copy), so trying each entry in turn costs nothing in normal use.
    """
    data = copy.deepcopy(data)
    node: object = data
    out = "$"
    for m in _PATH_SEGMENT.finditer(path):
        field, index, anykey = m.groups()
        if field is not None and isinstance(node, dict):
            out, node = f"{out}.{field}", node.get(field)
        elif index is not None and isinstance(node, list) and int(index) < len(node):
            out, node = f"{out}[{index}]", node[int(index)]
        elif anykey is not None and isinstance(node, dict):
            entries = list(node.items())
            culprit = None
            for key, value in entries:
                node.clear()
                node[key] = value
                try:
                    msgspec.convert(data, kind, builtin_types=_YAML_TYPES)
                except msgspec.ValidationError as e:
                    if str(e) == error:
                        culprit = key
                        break
            node.clear()
            node.update(entries)
            if culprit is None:
                return out + path[m.start() :]
            out, node = f"{out}.{culprit}", node[culprit]
        else:
            return out + path[m.start() :]
    return out
