"""The exception tree shared by the engine, the CLI and the HTTP API.

Every error carries a stable ``code``, a human ``message`` and ``where`` the problem is
(a JSON path such as ``$.messages[3].text``, ``line 7``, a policy key path such as
``policy.yaml: thresholds.review_at`` or ``lexicons/fraud.tsv:12``). ``status_code`` is what
the HTTP API answers with.
"""

from __future__ import annotations


class SmsguardError(Exception):
    """Base of every error this project raises on purpose."""

    status_code = 400
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


class NotFoundError(SmsguardError):
    """What a request names does not exist (or is not the caller's to see)."""

    status_code = 404
    code = "not_found"


class ConflictError(SmsguardError):
    """The request does not fit the current state (a batch already released, an item someone else holds)."""

    status_code = 409
    code = "conflict"


class ForbiddenError(SmsguardError):
    """The caller is known but may not do this."""

    status_code = 403
    code = "forbidden"


class InputError(SmsguardError):
    """A message or request a client sent is malformed."""

    code = "input.invalid"


class PolicyError(SmsguardError):
    """policy.yaml (or a tenant override) is invalid; ``where`` is the key path."""

    code = "policy.invalid"
    status_code = 422


class LexiconError(SmsguardError):
    """A lexicon file is invalid; ``where`` is ``file:line``."""

    code = "lexicon.invalid"
    status_code = 422


class ModelError(SmsguardError):
    """The classifier model file cannot be loaded or does not fit the engine."""

    code = "model.invalid"
    status_code = 422
