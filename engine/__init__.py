"""smsguard's screening engine: pure (no network, no database), importable on its own.

>>> from engine import Engine, Message, default_config
>>> Engine(default_config()).screen(Message(text="【某银行】您的验证码是123456，5分钟内有效。")).decision
'pass'
"""

from smsguard.core import (
    ConflictError,
    ForbiddenError,
    InputError,
    LexiconError,
    ModelError,
    NotFoundError,
    PolicyError,
    SmsguardError,
)

from ._classifier import Classifier
from ._content_hash import content_hash
from ._engine import Engine, EngineConfig
from ._lexicon import Lexicon, Term
from ._lexicon_stage import LexiconHit, LexiconStage
from ._matcher import DEFAULT_MATCHER, MATCHERS, Matcher, build_matcher
from ._normalize import Normalizer, OffsetMap, normalizer
from ._paths import PROJECT_ROOT, default_config
from ._policy import Policy, load_policy, parse_policy, screening_policy
from ._rules import RULE_CODES
from ._verdict import ClassifierResult, Message, Reason, Verdict, Versions

__all__ = [
    "DEFAULT_MATCHER",
    "MATCHERS",
    "PROJECT_ROOT",
    "RULE_CODES",
    "Classifier",
    "ClassifierResult",
    "ConflictError",
    "Engine",
    "EngineConfig",
    "ForbiddenError",
    "InputError",
    "Lexicon",
    "LexiconError",
    "LexiconHit",
    "LexiconStage",
    "Matcher",
    "Message",
    "ModelError",
    "Normalizer",
    "NotFoundError",
    "OffsetMap",
    "Policy",
    "PolicyError",
    "Reason",
    "SmsguardError",
    "Term",
    "Verdict",
    "Versions",
    "build_matcher",
    "content_hash",
    "default_config",
    "load_policy",
    "normalizer",
    "parse_policy",
    "screening_policy",
]
