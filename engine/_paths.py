"""Where the shipped policy, lexicons and model live, and the engine's default configuration.

The project is installed in place (``pip install -e``), so the repository's top-level
``policy.yaml``, ``lexicons/`` and ``models/`` are found next to this package. Environment
variables point the engine elsewhere: SMSGUARD_POLICY, SMSGUARD_LEXICONS (extra directories,
``os.pathsep``-separated) and SMSGUARD_MODEL; SMSGUARD_DATA_DIR holds the user's imported lexicons.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._engine import EngineConfig
from ._matcher import DEFAULT_MATCHER

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("SMSGUARD_DATA_DIR", PROJECT_ROOT / "var"))


def user_lexicon_dir() -> Path:
    """Where ``smsguard lexicon import`` writes; loaded after the shipped lexicons."""
    return data_dir() / "lexicons"


def default_config() -> EngineConfig:
    extra = [Path(p) for p in os.environ.get("SMSGUARD_LEXICONS", "").split(os.pathsep) if p]
    model = os.environ.get("SMSGUARD_MODEL")
    return EngineConfig(
        policy_path=Path(os.environ.get("SMSGUARD_POLICY", PROJECT_ROOT / "policy.yaml")),
        lexicon_dirs=(PROJECT_ROOT / "lexicons", user_lexicon_dir(), *extra),
        model_path=Path(model) if model else PROJECT_ROOT / "models" / "classifier.onnx",
        matcher=os.environ.get("SMSGUARD_MATCHER", DEFAULT_MATCHER),
    )
