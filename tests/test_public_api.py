"""What ``engine`` and ``webauth`` export is a contract: adding or removing a name must be a deliberate change
here."""

from __future__ import annotations

import importlib

import pytest

import engine

EXPECTED = [  # sorted
    "Classifier",
    "ClassifierResult",
    "ConflictError",
    "DEFAULT_MATCHER",
    "Engine",
    "EngineConfig",
    "ForbiddenError",
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
    "NotFoundError",
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


WEBAUTH = [  # sorted
    "Account",
    "Accounts",
    "AccountsConfig",
    "LOGIN_FAILED",
    "MIN_PASSWORD",
    "SqlSessionStore",
    "TEMPLATES",
    "WebAuth",
    "WebAuthConfig",
    "hash_password",
    "load_secret",
    "verify_password",
]
PINNED = {"engine": EXPECTED, "webauth": WEBAUTH}
packages = pytest.mark.parametrize("package", sorted(PINNED))


@packages
def test_all_is_pinned(package: str) -> None:
    module, expected = importlib.import_module(package), PINNED[package]
    assert sorted(module.__all__) == expected
    assert len(set(module.__all__)) == len(module.__all__)
    assert sorted(expected) == expected


@packages
def test_every_exported_name_exists(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@packages
def test_star_import_gives_exactly_all(package: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PINNED[package])


def test_errors_share_one_base() -> None:
    for name in ("ConflictError", "ForbiddenError", "InputError", "LexiconError", "ModelError", "NotFoundError",
                 "PolicyError"):
        assert issubclass(getattr(engine, name), engine.SmsguardError)
