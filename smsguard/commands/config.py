"""``smsguard config``: the configuration reference, generated from the code that reads the configuration.

* ``config reference [--check]`` writes ``docs/configuration.md`` (every environment variable from
  ``smsguard.core.VARIABLES`` and every ``policy.yaml`` key from the sections of ``smsguard.runtime.PolicyDocument``
  (each typed by the package that reads it), with default and
  meaning); ``--check`` exits 1 when the file is out of date (tests/smsguard/test_config_reference.py).
* ``config show`` prints the settings in force (secrets hidden).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from smsguard.core import PROJECT_ROOT

REFERENCE = PROJECT_ROOT / "docs" / "configuration.md"

# What each policy.yaml key means. A key a policy section has and this table lacks fails the reference
# test: document it here when you add it.
POLICY_KEYS: dict[str, str] = {
    "version": "Version string of the policy; part of every verdict's `versions` and of the verdict cache key.",
    "thresholds": "Classifier probability thresholds (used when a model is loaded).",
    "thresholds.review_at": "Probability at or above which a message goes to review.",
    "thresholds.block_at": "Probability at or above which a message is blocked.",
    "classifier_caps": "Category → {kind: action}: the most the classifier's category may do for a message "
                       "kind (e.g. `ad: {marketing: pass}`).",
    "categories": "Lexicon category → what a hit of each severity does.",
    "categories.<name>.low": "Action (`pass`/`review`/`block`) of a low-severity hit.",
    "categories.<name>.medium": "Action of a medium-severity hit.",
    "categories.<name>.high": "Action of a high-severity hit.",
    "default_category": "What each severity does for categories not listed under `categories`.",
    "default_category.low": "Action of a low-severity hit.",
    "default_category.medium": "Action of a medium-severity hit.",
    "default_category.high": "Action of a high-severity hit.",
    "rules": "Rule code (see `smsguard policy rules`) → its severity and action.",
    "rules.<name>.severity": "`low`, `medium` or `high`.",
    "rules.<name>.action": "`pass`, `review` or `block`.",
    "rules.<name>.category": "Category the reason is reported under.",
    "rules.<name>.enabled": "`false` turns the rule off.",
    "rules.<name>.by_kind": "Message kind → action overriding `action` for that kind.",
    "signature": "The 【signature】 rule.",
    "signature.min_len": "Shortest signature (characters).",
    "signature.max_len": "Longest signature (characters).",
    "length": "Segment sizes and the longest message.",
    "length.single": "Characters of a one-segment UCS-2 (Chinese) message.",
    "length.segment": "Characters per segment of a longer UCS-2 message.",
    "length.gsm7_single": "Characters of a one-segment GSM-7 (pure ASCII) message.",
    "length.gsm7_segment": "Characters per segment of a longer GSM-7 message.",
    "length.max": "Longest message accepted (characters).",
    "links": "Link rules.",
    "links.allowed_domains": "Domains links may point to (every tenant; tenants add their own).",
    "links.shorteners": "URL shortener domains (blocked: they hide the destination).",
    "links.tlds": "Top-level domains that make a bare `word.tld` count as a link.",
    "verification": "Verification-code message rules.",
    "verification.code_min": "Fewest characters of a code.",
    "verification.code_max": "Most characters of a code.",
    "kinds": "Cue words (folded text) that tell a message's kind when the sender gave none.",
    "kinds.verification": "Cues of a verification message.",
    "kinds.marketing": "Cues of a marketing message.",
    "optout_patterns": "Regular expressions (folded text): the opt-out instruction marketing must carry.",
    "contacts": "Cue words that, followed by an id, divert the reader to a private contact.",
    "contacts.wechat_cues": "WeChat cues (微信, vx, …).",
    "contacts.qq_cues": "QQ cues.",
    "optout_keywords": "MO replies that opt the number out (TD, T, 退订, STOP, …).",
    "optin_keywords": "MO replies that opt the number back in.",
    "complaint_keywords": "MO replies recorded as complaints (and an opt-out).",
    "caps": "Frequency caps per message kind, checked at release time.",
    "caps.verification": "Caps of verification messages per number and signature.",
    "caps.verification[].per": "Window length in seconds.",
    "caps.verification[].max": "Messages allowed per window.",
    "caps.notification": "Caps of notifications per number and signature.",
    "caps.notification[].per": "Window length in seconds.",
    "caps.notification[].max": "Messages allowed per window.",
    "caps.marketing": "Caps of marketing per number and signature.",
    "caps.marketing[].per": "Window length in seconds.",
    "caps.marketing[].max": "Messages allowed per window.",
    "quiet_hours": "When the listed kinds are held back (released after the end).",
    "quiet_hours.start": "Start, local `HH:MM`.",
    "quiet_hours.end": "End, local `HH:MM` (may be after midnight).",
    "quiet_hours.timezone": "IANA time zone of start and end.",
    "quiet_hours.kinds": "Message kinds held in quiet hours.",
    "prices": "Price per segment by carrier, for budgets and estimates.",
    "prices.currency": "Currency of the prices and budgets.",
    "prices.mobile": "China Mobile.",
    "prices.unicom": "China Unicom.",
    "prices.telecom": "China Telecom.",
    "prices.broadnet": "China Broadnet.",
    "prices.virtual": "Virtual operators (170/171/162/165/167).",
    "prices.other": "Anything else.",
    "tenants": "Tenant name → what that tenant adds to or overrides in this policy.",
    "tenants.<name>.signatures": "The tenant's registered signatures (others are `signature.unregistered`).",
    "tenants.<name>.allowed_domains": "Domains the tenant's links may point to.",
    "tenants.<name>.registered_numbers": "Phone numbers the tenant may put in messages (service lines).",
    "tenants.<name>.thresholds": "The tenant's own classifier thresholds.",
    "tenants.<name>.thresholds.review_at": "Probability at or above which its messages go to review.",
    "tenants.<name>.thresholds.block_at": "Probability at or above which its messages are blocked.",
    "review": "The human review queue: service-level targets and the canned decision reasons.",
    "review.sla_minutes": "Severity → minutes an item may wait (its service-level target).",
    "review.near_sla": "Share of the target after which an item is shown as near it.",
    "review.undo_seconds": "Grace window (0–300 s) in which a reviewer may undo a final decision before it is "
                           "released to the batch, webhooks and the customer (0: released at once).",
    "review.reasons": "Canned decision reasons of the reviewer workbench.",
    "review.reasons[].code": "Stable code of the reason (`[a-z][a-z0-9_]`, 2–40 characters).",
    "review.reasons[].label": "What the customer reads (console, API, webhooks).",
    "review.reasons[].categories": "Categories the reason is offered for (empty: every category).",
    "audit": "The audit log.",
    "audit.retention_days": "Events older than this may be archived (never silently deleted).",
    "audit.checkpoint_minutes": "How often the service signs a checkpoint of the chain head.",
    "audit.checkpoint_events": "A checkpoint is also signed after this many new events, whichever comes first.",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="the configuration reference and the settings in force")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ref = actions.add_parser("reference", help="write docs/configuration.md (every variable and policy key)")
    ref.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is out of date")
    ref.set_defaults(handler=run_reference)
    show = actions.add_parser("show", help="print the settings in force (secrets hidden)")
    show.set_defaults(handler=run_show)


def policy_keys() -> list[tuple[str, str, str]]:
    """(key path, type, default) of every policy.yaml key, walked from the sections of the policy document."""
    import msgspec
    import msgspec.inspect as mi

    from smsguard.runtime import POLICY_SECTIONS

    rows: list[tuple[str, str, str]] = []

    def walk(t: Any, path: str) -> None:
        if isinstance(t, mi.StructType):
            for f in t.fields:
                key = f"{path}.{f.encode_name}" if path else f.encode_name
                rows.append((key, _type_name(f.type), _default(f)))
                walk(f.type, key)
        elif isinstance(t, mi.DictType):
            walk(t.value_type, path + ".<name>")
        elif isinstance(t, mi.ListType):
            walk(t.item_type, path + "[]")
        elif isinstance(t, mi.UnionType):
            for member in t.types:
                walk(member, path)

    def _default(f: Any) -> str:
        if f.required:
            return "required"
        value = f.default_factory() if f.default is mi.NODEFAULT else f.default
        text = msgspec.json.encode(msgspec.to_builtins(value)).decode()
        return text if len(text) <= 60 else text[:57] + "…"

    for _, kind, at, _owner in POLICY_SECTIONS:
        if at is None:  # the section's fields are top-level keys
            walk(mi.type_info(kind), "")
        else:
            rows.append((at, "mapping", _default_of(kind)))
            walk(mi.type_info(kind), at)
    return rows


def _default_of(kind: Any) -> str:
    import msgspec

    text = msgspec.json.encode(msgspec.to_builtins(kind())).decode()
    return text if len(text) <= 60 else text[:57] + "…"


def _type_name(t: Any) -> str:
    import msgspec.inspect as mi

    if isinstance(t, mi.StructType):
        return "mapping"
    if isinstance(t, mi.DictType):
        return "mapping of name →"
    if isinstance(t, mi.ListType):
        return "list"
    if isinstance(t, mi.UnionType):
        return " or ".join(_type_name(m) for m in t.types)
    if isinstance(t, mi.LiteralType):
        return " / ".join(str(v) for v in t.values)
    return type(t).__name__.removesuffix("Type").lower()


def render_reference() -> str:
    from smsguard.core import VARIABLES, Settings

    defaults = Settings()
    out = [
        "# Configuration reference",
        "",
        "Generated by `smsguard config reference` from `core/_settings.py` (environment variables) and",
        "the policy sections of `runtime/_policy.py` (policy.yaml: each section is typed in the `_policy.py` of the",
        "package that reads it); `tests/smsguard/test_config_reference.py` fails when it is out of date.",
        "Settings are read once per process, in `smsguard.core`; a bad value stops the command with an error",
        "naming the variable. An empty variable counts as unset.",
        "",
        "## Environment variables",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for var in VARIABLES:
        default = var.default or f"`{_shown(getattr(defaults, var.field))}`"
        out.append(f"| `{var.name}` | {default} | {var.doc} |")
    out += [
        "",
        "## policy.yaml",
        "",
        "Validated at load (`smsguard policy check`): unknown keys and bad values are errors naming the key path.",
        "`<name>` stands for a key of your choice (a category, a rule code, a tenant), `[]` for each list item.",
        "",
        "| key | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for key, kind, default in policy_keys():
        meaning = POLICY_KEYS.get(key, "**undocumented**")
        out.append(f"| `{key}` | {kind} | `{default}` | {meaning} |")
    return "\n".join(out) + "\n"


def _shown(value: object) -> str:
    if isinstance(value, Path):
        try:
            return value.relative_to(PROJECT_ROOT).as_posix() + ("/" if value.suffix == "" else "")
        except ValueError:
            return str(value)
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return str(value)


def run_reference(args: argparse.Namespace) -> int:
    text = render_reference()
    if args.check:
        current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
        if current != text:
            print(f"smsguard: {REFERENCE}: out of date: run `smsguard config reference` [config.stale]",
                  file=sys.stderr)
            return 1
        return 0
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(text, encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from smsguard.core import VARIABLES, get_settings

    settings = get_settings()
    secret = {"phone_key", "phone_hash_key", "session_secret"}
    for var in VARIABLES:
        value = getattr(settings, var.field)
        shown = "(set)" if var.field in secret and value else _shown(value)
        print(f"{var.name}={shown}")
    return 0
