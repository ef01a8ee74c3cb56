"""The peers' journal (``--journal FILE``): one JSON object per line, appended as each part is accepted or
reported. The CMPP simulator reads it back after a restart; crash tests read it to count what a peer took."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The journal's records in order; a line cut by a kill (the sender got no response for it) is skipped."""
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def accepted(path: Path, key: Callable[[dict[str, Any]], str]) -> collections.Counter[str]:
    """How many accepted records the journal holds per ``key(record)``."""
    return collections.Counter(key(rec) for rec in records(path) if rec.get("event") == "accepted")
