"""JSON answers of the OpenAI surface: the body as rendered, `x-request-id` beside it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from assistd.api.common import request_id


def respond(request: Request, body: dict[str, Any], status: int = 200) -> Response:
    """Unlike DashScope's bodies, OpenAI's carry no `request_id`: it is a header only."""
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"x-request-id": request_id(request)},
    )
