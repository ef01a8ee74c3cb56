"""policy.yaml as one document: every section from its owner's loader, unknown top-level keys rejected with
the key path, and the Runtime's document following the engine's reloads (and refusing a bad one whole)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from smsguard.audit import audit_policy
from smsguard.batches import batches_policy
from smsguard.billing import prices_policy
from smsguard.core import PROJECT_ROOT, PolicyError, PolicyFile, load_settings, section_keys
from smsguard.engine import RULE_CODES, parse_policy
from smsguard.review import review_policy
from smsguard.runtime import POLICY_SECTIONS, PolicyDocument, Runtime

SHIPPED = PROJECT_ROOT / "policy.yaml"


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return yaml.safe_load(SHIPPED.read_text("utf-8"))


def _dump(data: dict[str, Any]) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()


def test_every_section_comes_from_its_owners_loader() -> None:
    doc = PolicyDocument.load(SHIPPED)
    file = PolicyFile.read(SHIPPED)
    assert (doc.screening, doc.version) == parse_policy(file.raw, known_rules=frozenset(RULE_CODES))
    assert doc.batches == batches_policy(file)
    assert doc.prices == prices_policy(file)
    assert doc.audit == audit_policy(file)
    assert doc.review == review_policy(file, categories=doc.screening.categories)
    assert doc.prices.for_carrier("virtual") == 0.05 and doc.prices.for_carrier("nonsense") == doc.prices.other
    assert doc.review.undo_seconds == 10 and doc.audit.retention_days == 365


def test_the_sections_split_the_top_level_keys_between_them(shipped: dict[str, Any]) -> None:
    keys = [section_keys(kind, at=at) for _, kind, at, _ in POLICY_SECTIONS]
    assert sum(map(len, keys)) == len(frozenset().union(*keys)), "a top-level key with two owners"
    assert set(shipped) <= frozenset().union(*keys)
    assert [name for name, *_ in POLICY_SECTIONS] == [f for f in PolicyDocument.__dataclass_fields__ if f != "version"]


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "where", "code", "words"),
    [
        # a top-level key no package owns (a typo must not silently disable something)
        (_set("quiet_hourz", "20-08"), "$", "policy.schema", "quiet_hourz"),
        # each owner's errors come through the document unchanged
        (_set("thresholds/block_at", 1.5), "$.thresholds.block_at", "policy.value", "between 0 and 1"),
        (_set("tenants/demo/signature", ["x"]), "$.tenants.demo", "policy.schema", "signature"),
        (_set("caps/verification", [{"per": 0, "max": 1}]), "$.caps.verification[0]", "policy.value", "at least 1"),
        (_set("quiet_hours/start", "25:00"), "$.quiet_hours.start", "policy.value", "HH:MM"),
        (_set("optin_keywords", "start"), "$.optin_keywords", "policy.schema", "Expected `array`"),
        (_set("prices/mobile", -1), "$.prices.mobile", "policy.value", "negative"),
        (_set("prices/euro", 1), "$.prices", "policy.schema", "euro"),
        (_set("audit/retention_days", 0), "$.audit.retention_days", "policy.schema", ">= 1"),
        (_set("review/undo_seconds", "ten"), "$.review.undo_seconds", "policy.schema", "Expected `float`"),
        (_set("review/undo_seconds", -1), "$.review.undo_seconds", "policy.schema", ">= 0"),
        (_set("review/undo_seconds", 3600), "$.review.undo_seconds", "policy.schema", "<= 300"),
        (_set("review/sla_minutes", {"urgent": 5}), "$.review.sla_minutes", "policy.schema", "'urgent' (a key)"),
        (_set("review/reasons/1/code", "unregistered_link"), "$.review.reasons[1].code", "policy.value", "twice"),
        (_set("review/reasons/1/categories", ["wechat"]), "$.review.reasons[1].categories[0]", "policy.value",
         "unknown category"),
    ],
)
def test_errors_name_the_key_path(
    shipped: dict[str, Any], edit: Callable[[dict[str, Any]], None], where: str, code: str, words: str
) -> None:
    data = copy.deepcopy(shipped)
    edit(data)
    with pytest.raises(PolicyError) as info:
        PolicyDocument.parse(_dump(data))
    assert (info.value.where, info.value.code) == (f"policy.yaml: {where}", code)
    assert words in info.value.message


@pytest.mark.parametrize(("raw", "code", "where"), [
    (b"version: [1\n", "policy.syntax", "broken.yaml"),
    (b"", "policy.schema", "broken.yaml: $"),
    (b"- a list\n", "policy.schema", "broken.yaml: $"),
])
def test_a_file_that_is_no_mapping(raw: bytes, code: str, where: str) -> None:
    with pytest.raises(PolicyError) as info:
        PolicyDocument.parse(raw, name="broken.yaml")
    assert (info.value.code, info.value.where) == (code, where)


def test_the_runtimes_document_follows_the_engines_reloads(tmp_path: Path, shipped: dict[str, Any]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(SHIPPED.read_bytes())
    rt = Runtime(load_settings({"SMSGUARD_DATA_DIR": str(tmp_path / "var"), "SMSGUARD_POLICY": str(path)}))
    alone = rt.policy  # no engine yet: the document is read on its own
    engine = rt.screening  # the engine's policy now comes through the document loader
    before = rt.policy
    assert before == alone and before.screening is engine.policy
    assert before.version == rt.screening.versions.policy and before.screening is rt.screening.policy

    changed = copy.deepcopy(shipped)
    changed["quiet_hours"]["start"] = "21:30"
    changed["prices"]["mobile"] = 0.04
    path.write_bytes(_dump(changed))
    assert rt.policy is before  # nothing reloaded yet: the document in force stays
    rt.screening.reload("policy")
    after = rt.policy
    assert (after.batches.quiet_hours.start, after.prices.mobile) == ("21:30", 0.04)
    assert after.version == rt.screening.versions.policy != before.version
    assert after.screening is rt.screening.policy

    broken = copy.deepcopy(changed)
    broken["caps"]["marketing"] = [{"per": 0, "max": 1}]  # the engine's keys are fine; the batches' are not
    path.write_bytes(_dump(broken))
    with pytest.raises(PolicyError) as info:
        rt.screening.reload("policy")
    assert info.value.where == "policy.yaml: $.caps.marketing[0]"
    assert rt.screening.versions.policy == after.version and rt.policy is after  # nothing half-applied
