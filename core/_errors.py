"""The one exception tree of the project. No HTTP here: the API and the web UIs map classes to statuses at
their edge (``smsguard.api.http_status``), the CLI prints ``where: message [code]`` and exits 2.

Every error carries a stable ``code``, a human ``message`` and ``where`` the problem is (a JSON path such
as ``$.messages[3].text``, ``line 7``, a policy key path such as ``policy.yaml: thresholds.review_at``,
``lexicons/fraud.tsv:12`` or an environment variable). Subclass the *kind* that fits (not found, conflict,
forbidden, …) and give it a ``code``; never define another ``NotFound``.
"""

from __future__ import annotations


class SmsguardError(Exception):
    """Base of every error this project raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, where: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "where": self.where}

    def __str__(self) -> str:
        return f"{self.where}: {self.message} [{self.code}]" if self.where else f"{self.message} [{self.code}]"


class InputError(SmsguardError):
    """What a client sent (a message, a request, a file, a command-line value) is malformed."""

    code = "input.invalid"


class NotFoundError(SmsguardError):
    """What a request names does not exist (or is not the caller's to see)."""

    code = "not_found"


class ConflictError(SmsguardError):
    """The request does not fit the current state (a batch already released, an item someone else holds)."""

    code = "conflict"


class UnauthenticatedError(SmsguardError):
    """The caller is not known: a missing, malformed, unknown or revoked credential."""

    code = "auth.invalid"


class ForbiddenError(SmsguardError):
    """The caller is known but may not do this."""

    code = "forbidden"


class LimitError(SmsguardError):
    """The caller is over a limit (rate, budget); ``retry_after`` says when trying again may succeed."""

    code = "limit.exceeded"

    def __init__(
        self, message: str, *, where: str | None = None, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, where=where, code=code)
        self.retry_after = retry_after


class QuotaError(LimitError):
    """A quota the caller pays for or was granted is used up (a tenant's budget)."""

    code = "quota.exceeded"


class ExternalError(SmsguardError):
    """A peer this process talks to (a carrier gateway) failed or refused."""

    code = "external.error"


class UnavailableError(SmsguardError):
    """A service this process depends on (PostgreSQL, Redis, a carrier peer) cannot be reached right now."""

    code = "unavailable"


class ConfigError(SmsguardError):
    """Configuration is invalid: a setting, policy.yaml, a lexicon, the model, a channels file."""

    code = "config.invalid"


class SettingsError(ConfigError):
    """An environment variable (or a secret file it names) has a value the service cannot use; ``where``
    names the variable."""

    code = "settings.invalid"


class PolicyError(ConfigError):
    """policy.yaml (or a tenant override) is invalid; ``where`` is the key path."""

    code = "policy.invalid"


class LexiconError(ConfigError):
    """A lexicon file is invalid; ``where`` is ``file:line``."""

    code = "lexicon.invalid"


class ModelError(ConfigError):
    """The classifier model file cannot be loaded or does not fit the engine."""

    code = "model.invalid"


class ProtocolError(SmsguardError):
    """Bytes from a peer do not decode as the protocol says (a CMPP/SMPP PDU, an HTTP gateway answer)."""

    code = "protocol.invalid"


class PeerError(UnavailableError):
    """A peer process (a test carrier, a simulator) could not be started or reached."""

    code = "peer.unavailable"
