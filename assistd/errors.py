"""One domain error tree; each wire surface maps it to its own envelope once."""

from __future__ import annotations

ECHO_MAX = 64


def echo(value: object) -> str:
    """`value` as an error message may quote it: at most ECHO_MAX characters, then "...",
    so a 20 KB id does not come back in a 20 KB error (nor fill the logs)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= ECHO_MAX else f"{text[:ECHO_MAX]}..."


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


class ActiveRun(InvalidRequest):
    """The thread has a run that is not finished, so a message cannot be added or another
    run started. Each surface words it its own way (clients match OpenAI's texts)."""

    def __init__(self, thread_id: str, run_id: str, status: str, adding: str) -> None:
        super().__init__(
            f"Thread '{thread_id}' already has an active run ('{run_id}', {status}). "
            "Wait for it to finish or cancel it first.",
            "thread_id",
        )
        self.thread_id = thread_id
        self.run_id = run_id
        self.adding = adding  # "message" or "run"


class Unauthorized(AssistdError):
    status = 401


class Forbidden(AssistdError):
    status = 403


class NotFound(AssistdError):
    status = 404

    @classmethod
    def of(cls, kind: str, object_id: str) -> NotFound:
        return cls(f"No {kind} found with id '{echo(object_id)}'.")


class MethodNotAllowed(AssistdError):
    status = 405


class Conflict(AssistdError):
    """The object exists but its state forbids the request (a busy thread, a finished run)."""

    status = 409


class Gone(AssistdError):
    """The object was there but what was asked of it is no longer kept (a run's events
    past their retention)."""

    status = 410


class RequestTimeout(AssistdError):
    """The client took too long to send its request."""

    status = 408


class PayloadTooLarge(AssistdError):
    status = 413


class UnsupportedMediaType(AssistdError):
    status = 415


class RateLimited(AssistdError):
    """A quota of the caller's key or workspace is used up (core/quotas.py): the same
    request may succeed after `retry_after_s` seconds (at most 60); `soon`: False when it
    will not (a day's tokens used up hours before the day ends), so clients that retry by
    themselves are told not to."""

    status = 429

    def __init__(self, message: str, retry_after_s: int, *, soon: bool = True) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.soon = soon


class ServiceUnavailable(AssistdError):
    """A passing condition (the database locked by another process): nothing was changed,
    and the same request may succeed after `retry_after_s` seconds."""

    status = 503

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StartupError(AssistdError):
    """A setting, configuration file or start-up condition the operator must fix (a bad
    value, a taken port, a data dir another server holds). The CLI prints the message
    alone, without a traceback, and exits non-zero."""
