"""Error types every service raises; the API and pages translate them, never invent them."""

from __future__ import annotations


class DomainError(Exception):
    """A refused request. ``code`` is stable and machine-readable; ``message`` is for people."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = fields or {}


class ValidationFailed(DomainError):
    """Input that can never be right (400); ``fields`` names each bad field."""

    status_code = 400
    default_code = "invalid"


class Conflict(DomainError):
    """Valid input that conflicts with the current state (409)."""

    status_code = 409
    default_code = "conflict"


class Unprocessable(DomainError):
    """Well-formed, but it cannot be applied as sent (422), e.g. a reused idempotency key."""

    status_code = 422
    default_code = "unprocessable"


class NotFound(DomainError):
    status_code = 404
    default_code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    default_code = "forbidden"
