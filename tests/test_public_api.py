"""What ``engine`` exports is a contract: adding or removing a name must be a deliberate change here."""

from __future__ import annotations

import engine

EXPECTED = [  # sorted
    "Classifier",
    "ClassifierResult",
    "DEFAULT_MATCHER",
    "Engine",
    "EngineConfig",
    "InputError",
    "Lexicon",
    "LexiconError",
    "LexiconHit",
    "LexiconStage",
    "MATCHERS",
    "Matcher",
    "Message",
    "ModelError",
    "Normalizer",
    "OffsetMap",
    "PROJECT_ROOT",
    "Policy",
    "PolicyError",
    "RULE_CODES",
    "Reason",
    "SmsguardError",
    "Term",
    "Verdict",
    "Versions",
    "build_matcher",
    "default_config",
    "load_policy",
    "normalizer",
    "parse_policy",
]


def test_all_is_pinned() -> None:
    assert sorted(engine.__all__) == EXPECTED
    assert len(set(engine.__all__)) == len(engine.__all__)
    assert sorted(EXPECTED) == EXPECTED


def test_every_exported_name_exists() -> None:
    missing = [name for name in engine.__all__ if not hasattr(engine, name)]
    assert missing == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from engine import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(EXPECTED)


def test_errors_share_one_base() -> None:
    for name in ("InputError", "LexiconError", "ModelError", "PolicyError"):
        assert issubclass(getattr(engine, name), engine.SmsguardError)
