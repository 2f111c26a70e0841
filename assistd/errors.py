"""One domain error tree; each wire surface maps it to its own envelope once."""

from __future__ import annotations


class AssistdError(Exception):
    """Base of every error a client can cause or see. `status` is the HTTP status."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(AssistdError):
    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Unauthorized(AssistdError):
    status = 401


class Forbidden(AssistdError):
    status = 403


class NotFound(AssistdError):
    status = 404

    @classmethod
    def of(cls, kind: str, object_id: str) -> NotFound:
        return cls(f"No {kind} found with id '{object_id}'.")


class MethodNotAllowed(AssistdError):
    status = 405


class Conflict(AssistdError):
    """The object exists but its state forbids the request (a busy thread, a finished run)."""

    status = 409


class RequestTimeout(AssistdError):
    """The client took too long to send its request."""

    status = 408


class PayloadTooLarge(AssistdError):
    status = 413


class UnsupportedMediaType(AssistdError):
    status = 415
