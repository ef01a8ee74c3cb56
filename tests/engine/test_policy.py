"""policy.yaml's screening keys: the shipped file loads, and every invalid value is an error naming its key path.
(The whole document, with the other packages' sections and unknown top-level keys: tests/runtime.)"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from smsguard.core import PolicyError
from smsguard.engine import PROJECT_ROOT, RULE_CODES, Policy, load_policy, parse_policy

KNOWN = frozenset(RULE_CODES)


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "policy.yaml").read_text("utf-8"))


def parse(data: dict[str, Any]) -> tuple[Policy, str]:
    return parse_policy(yaml.safe_dump(data, allow_unicode=True).encode(), known_rules=KNOWN)


def error_for(shipped: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> PolicyError:
    data = copy.deepcopy(shipped)
    edit(data)
    with pytest.raises(PolicyError) as info:
        parse(data)
    return info.value


def test_shipped_policy_loads() -> None:
    policy, version = load_policy(PROJECT_ROOT / "policy.yaml", known_rules=KNOWN)
    assert version.startswith(policy.version + "+")
    assert set(policy.rules) == KNOWN
    assert 0 <= policy.thresholds.review_at <= policy.thresholds.block_at <= 1
    assert policy.optout_patterns and policy.kinds.marketing and policy.kinds.verification
    assert "demo" in policy.tenants


def test_version_is_a_content_hash(shipped: dict[str, Any]) -> None:
    _, v1 = parse(shipped)
    assert parse(copy.deepcopy(shipped))[1] == v1
    changed = copy.deepcopy(shipped)
    changed["thresholds"]["review_at"] = 0.4
    assert parse(changed)[1] != v1


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = data
        for key in parents:
            node = node[key]
        del node[last]

    return edit


@pytest.mark.parametrize(
    ("edit", "where", "code", "words"),
    [
        # wrong type
        (_set("thresholds/review_at", "high"), "$.thresholds.review_at", "policy.schema", "Expected `float`"),
        (_set("signature/min_len", "two"), "$.signature.min_len", "policy.schema", "Expected `int`"),
        (_set("version", 3), "$.version", "policy.schema", "Expected `str`"),
        (_set("links/shorteners", "t.cn"), "$.links.shorteners", "policy.schema", "Expected `array`"),
        (_set("optout_patterns", None), "$.optout_patterns", "policy.schema", "Expected `array`"),
        # unknown key (a typo must not silently disable something)
        (_set("thresholds/reveiw_at", 0.5), "$.thresholds", "policy.schema", "reveiw_at"),
        (_set("tenants/demo/signature", ["x"]), "$.tenants.demo", "policy.schema", "signature"),
        # threshold out of range, review above block
        (_set("thresholds/block_at", 1.5), "$.thresholds.block_at", "policy.value", "between 0 and 1"),
        (_set("thresholds/review_at", -0.1), "$.thresholds.review_at", "policy.value", "between 0 and 1"),
        (_set("thresholds/review_at", 0.9995), "$.thresholds.review_at", "policy.value", "must not exceed block_at"),
        (
            _set("tenants/demo/thresholds", {"review_at": 0.8, "block_at": 0.7}),
            "$.tenants.demo.thresholds.review_at",
            "policy.value",
            "must not exceed block_at",
        ),
        (
            _set("tenants/demo/thresholds", {"review_at": 0.1, "block_at": 2}),
            "$.tenants.demo.thresholds.block_at",
            "policy.value",
            "between 0 and 1",
        ),
        # invalid opt-out regex
        (_set("optout_patterns/1", "回[复覆"), "$.optout_patterns[1]", "policy.value", "invalid regular expression"),
        # unknown and missing rule codes
        (
            _set("rules/contact.telegram", {"severity": "high", "action": "block"}),
            "$.rules.contact.telegram",
            "policy.value",
            "unknown rule code",
        ),
        (_drop("rules/contact.email"), "$.rules", "policy.value", "contact.email"),
        # mapping keys are named (msgspec alone would say `$.rules[...]`)
        (_set("rules/contact.qq/action", "drop"), "$.rules.contact.qq.action", "policy.schema", "'drop'"),
        (
            _set("rules/contact.phone/by_kind", {"notification": "review", "promo": "pass"}),
            "$.rules.contact.phone.by_kind",
            "policy.schema",
            "'promo' (a key)",
        ),
        (_set("categories/fraud/medium", "blok"), "$.categories.fraud.medium", "policy.schema", "'blok'"),
        (
            _set("tenants/demo/thresholds", {"review_at": "low"}),
            "$.tenants.demo.thresholds.review_at",
            "policy.schema",
            "Expected `float`",
        ),
        (
            _set("tenants/demo/registered_numbers", 4008001234),
            "$.tenants.demo.registered_numbers",
            "policy.schema",
            "array",
        ),
        # bad tenant number
        (
            _set("tenants/demo/registered_numbers", ["4008001234", "021-6123"]),
            "$.tenants.demo.registered_numbers[1]",
            "policy.value",
            "digits only",
        ),
        # other value checks
        (_set("signature", {"min_len": 5, "max_len": 3}), "$.signature.min_len", "policy.value", "max_len"),
        (_set("length/segment", 80), "$.length", "policy.value", "segment <= single"),
        (_set("verification", {"code_min": 0, "code_max": 6}), "$.verification.code_min", "policy.value", "at least"),
    ],
)
def test_errors_name_the_key_path(
    shipped: dict[str, Any], edit: Callable[[dict[str, Any]], None], where: str, code: str, words: str
) -> None:
    error = error_for(shipped, edit)
    assert error.where == f"policy.yaml: {where}"
    assert error.code == code
    assert words in error.message
    assert str(error).startswith(f"policy.yaml: {where}: ")


def test_missing_version_is_an_error(shipped: dict[str, Any]) -> None:
    error = error_for(shipped, _drop("version"))
    assert error.where == "policy.yaml: $"
    assert "version" in error.message


def test_yaml_syntax_error() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(b"version: [1\n", name="broken.yaml")
    assert info.value.code == "policy.syntax"
    assert info.value.where == "broken.yaml"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nope.yaml")
    assert info.value.code == "policy.unreadable"
    assert str(tmp_path / "nope.yaml") in (info.value.where or "")


def test_error_names_the_file(tmp_path: Path, shipped: dict[str, Any]) -> None:
    data = copy.deepcopy(shipped)
    data["thresholds"]["block_at"] = 7
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path, known_rules=KNOWN)
    assert info.value.where == "strict.yaml: $.thresholds.block_at"


def test_rule_codes_are_not_checked_without_known_rules(shipped: dict[str, Any]) -> None:
    data = copy.deepcopy(shipped)
    del data["rules"]["contact.email"]
    policy, _ = parse_policy(yaml.safe_dump(data, allow_unicode=True).encode())
    assert "contact.email" not in policy.rules


# -- tenants and lookups -----------------------------------------------------------------------


def test_tenant_overrides(shipped: dict[str, Any]) -> None:
    data = copy.deepcopy(shipped)
    data["tenants"]["acme"] = {"thresholds": {"review_at": 0.2, "block_at": 0.3}, "signatures": ["极客"]}
    policy, _ = parse(data)
    assert (policy.thresholds_for("acme").review_at, policy.thresholds_for("acme").block_at) == (0.2, 0.3)
    # A tenant without its own thresholds, an unknown tenant and no tenant all use the global ones.
    for tenant in ("demo", "nobody", None):
        assert policy.thresholds_for(tenant) == policy.thresholds
    assert policy.tenant("acme").signatures == ["极客"]
    assert policy.tenant("demo").registered_numbers == ["4008001234", "02161234567"]
    assert policy.tenant("nobody").signatures == []
    assert policy.tenant(None).allowed_domains == []


def test_category_actions(shipped: dict[str, Any]) -> None:
    policy, _ = parse(shipped)
    assert policy.category_actions("gambling").action("medium") == "block"
    assert policy.category_actions("loan").action("medium") == "review"
    # Categories the policy does not list use default_category.
    assert policy.category_actions("imported").action("low") == policy.default_category.low


def test_rule_by_kind_overrides_action(shipped: dict[str, Any]) -> None:
    policy, _ = parse(shipped)
    phone = policy.rules["contact.phone"]
    assert phone.action_for("notification") == "review"
    assert phone.action_for("marketing") == "block"


def test_error_names_the_failing_tenant_among_several(shipped: dict[str, Any]) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["tenants"]["alpha"] = {"signatures": ["甲"]}
        data["tenants"]["beta"] = {"signatures": "乙"}  # not a list
        data["tenants"]["gamma"] = {"signatures": ["丙"]}

    error = error_for(shipped, edit)
    assert error.where == "policy.yaml: $.tenants.beta.signatures"


def test_the_other_packages_keys_are_left_to_them(shipped: dict[str, Any]) -> None:
    data = copy.deepcopy(shipped)
    data["caps"] = {"verification": [{"per": 0, "max": 1}]}  # the batches loader rejects this, not the engine
    data["review"] = {"undo_seconds": "ten"}
    policy, version = parse(data)
    assert set(policy.rules) == KNOWN and version.startswith(policy.version + "+")
