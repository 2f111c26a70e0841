"""The domain error tree in OpenAI's envelope: {"error": {message, type, param, code}}.

All four keys are always present (`param` and `code` may be null) and every answer
carries `x-request-id`, which the SDK exposes as `exc.request_id`.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from assistd.api.openai.wire import respond
from assistd.errors import (
    ActiveRun,
    AssistdError,
    Conflict,
    Forbidden,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)

# error class -> (type, code)
KINDS: dict[type[AssistdError], tuple[str, str | None]] = {
    InvalidRequest: ("invalid_request_error", None),
    Unauthorized: ("invalid_request_error", "invalid_api_key"),
    Forbidden: ("permission_error", "forbidden"),
    NotFound: ("invalid_request_error", None),
    MethodNotAllowed: ("invalid_request_error", "method_not_allowed"),
    Conflict: ("invalid_request_error", "conflict"),
    PayloadTooLarge: ("invalid_request_error", "request_too_large"),
    RequestTimeout: ("invalid_request_error", "request_timeout"),
    UnsupportedMediaType: ("invalid_request_error", "unsupported_media_type"),
    ServiceUnavailable: ("server_error", "service_unavailable"),
    RateLimited: ("rate_limit_exceeded", "rate_limit_exceeded"),
}


def kind_of(error: AssistdError) -> tuple[str, str | None]:
    for cls in type(error).__mro__:
        if cls in KINDS:
            return KINDS[cls]
    return "server_error", None


def message_of(error: AssistdError) -> str:
    """OpenAI's own texts where clients match them (active-run conflicts)."""
    if isinstance(error, ActiveRun):
        if error.adding == "message":
            return f"Can't add messages to {error.thread_id} while a run {error.run_id} is active."
        return f"Thread {error.thread_id} already has an active run {error.run_id}."
    return error.message


def error_body(error: AssistdError) -> dict[str, object]:
    kind, code = kind_of(error)
    param = error.field if isinstance(error, InvalidRequest) and error.status == 400 else None
    if isinstance(error, ActiveRun):
        param = None  # as OpenAI answers it
    return {"error": {"message": message_of(error), "type": kind, "param": param, "code": code}}


def error_response(request: Request, error: AssistdError) -> Response:
    # OpenAI answered a conflict of state (cancelling an ended run, outputs for a run that
    # stopped waiting) with 400; a 409 the SDK would resend twice.
    status = 400 if isinstance(error, Conflict) else error.status
    response = respond(request, error_body(error), status=status)
    if isinstance(error, ServiceUnavailable | RateLimited):
        response.headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, RateLimited) and not error.soon:
        response.headers["x-should-retry"] = "false"  # the SDK would retry in vain
    return response
