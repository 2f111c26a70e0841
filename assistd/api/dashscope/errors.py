"""The domain error tree in DashScope's flat envelope: {request_id, code, message}."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from assistd.api.common import json_response
from assistd.errors import (
    AssistdError,
    Conflict,
    Forbidden,
    Gone,
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

CODES: dict[type[AssistdError], str] = {
    InvalidRequest: "InvalidParameter",
    Unauthorized: "InvalidApiKey",
    Forbidden: "AccessDenied",
    NotFound: "NotFound",
    MethodNotAllowed: "MethodNotAllowed",
    Conflict: "Conflict",
    Gone: "Gone",
    PayloadTooLarge: "RequestTooLarge",
    RequestTimeout: "RequestTimeOut",
    UnsupportedMediaType: "UnsupportedMediaType",
    ServiceUnavailable: "ServiceUnavailable",
    RateLimited: "Throttling",
}


def code_of(error: AssistdError) -> str:
    for kind in type(error).__mro__:
        if kind in CODES:
            return CODES[kind]
    return "InternalError"


def error_response(request: Request, error: AssistdError) -> Response:
    body = {"code": code_of(error), "message": error.message}
    response = json_response(request, body, status=error.status)
    if isinstance(error, ServiceUnavailable | RateLimited):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response
