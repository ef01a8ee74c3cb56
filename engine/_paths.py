"""The engine's default configuration: where the shipped policy, lexicons and model live.

The paths come from the process's settings (``SMSGUARD_POLICY``, ``SMSGUARD_LEXICONS``, ``SMSGUARD_MODEL``,
``SMSGUARD_MATCHER``, ``SMSGUARD_MODEL_THREADS``; see ``smsguard.core``); this module reads no environment.
"""

from __future__ import annotations

from smsguard.core import PROJECT_ROOT, Settings, get_settings

from ._engine import EngineConfig
from ._matcher import DEFAULT_MATCHER

__all__ = ["PROJECT_ROOT", "default_config"]


def default_config(settings: Settings | None = None) -> EngineConfig:
    """The engine configuration ``settings`` (default: the process's) describe."""
    s = settings or get_settings()
    return EngineConfig(
        policy_path=s.policy_path,
        lexicon_dirs=s.lexicon_dirs,
        model_path=s.model_path,
        matcher=s.matcher or DEFAULT_MATCHER,
        model_threads=s.model_threads,
    )
