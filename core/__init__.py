"""The ground floor every other package stands on: the exception tree and the typed settings.

It imports nothing else of smsguard, so anything may import it. The composition root that opens SQL,
Redis, the phone vault and the engine from these settings is one floor up, in ``smsguard.runtime``.

>>> from smsguard.core import load_settings
>>> load_settings({}).embedded
True
"""

from ._errors import (
    ConfigError,
    ConflictError,
    ExternalError,
    ForbiddenError,
    InputError,
    LexiconError,
    LimitError,
    ModelError,
    NotFoundError,
    PeerError,
    PolicyError,
    ProtocolError,
    QuotaError,
    SettingsError,
    SmsguardError,
    UnauthenticatedError,
    UnavailableError,
)
from ._policy_file import PolicyFile, PolicySection, section_keys
from ._secrets import (
    Secrets,
    create_once,
    format_phone_keys,
    generate_secrets,
    load_secrets,
    missing_secrets,
    parse_phone_keys,
)
from ._settings import (
    PROJECT_ROOT,
    VARIABLES,
    Settings,
    Variable,
    export_to_children,
    get_settings,
    load_settings,
    named_variables,
)

__all__ = [
    "PROJECT_ROOT",
    "VARIABLES",
    "ConfigError",
    "ConflictError",
    "ExternalError",
    "ForbiddenError",
    "InputError",
    "LexiconError",
    "LimitError",
    "ModelError",
    "NotFoundError",
    "PeerError",
    "PolicyError",
    "PolicyFile",
    "PolicySection",
    "ProtocolError",
    "QuotaError",
    "Secrets",
    "Settings",
    "SettingsError",
    "SmsguardError",
    "UnauthenticatedError",
    "UnavailableError",
    "Variable",
    "create_once",
    "export_to_children",
    "format_phone_keys",
    "generate_secrets",
    "get_settings",
    "load_secrets",
    "load_settings",
    "missing_secrets",
    "named_variables",
    "parse_phone_keys",
    "section_keys",
]
