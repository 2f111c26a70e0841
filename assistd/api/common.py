"""Request plumbing shared by every surface: ids, bodies, pagination, JSON responses."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from assistd.core.objects import PageRequest
from assistd.core.validation import JSON_DEPTH_MAX, check_json_depth
from assistd.errors import InvalidRequest, Unauthorized, UnsupportedMediaType, echo

M = TypeVar("M", bound=BaseModel)


def request_id(request: Request) -> str:
    """One id per request, made on first use, echoed in bodies and the X-Request-Id header."""
    rid: str | None = getattr(request.state, "request_id", None)
    if rid is None:
        rid = str(uuid.uuid4())
        request.state.request_id = rid
    return rid


def json_response(request: Request, body: dict[str, Any], status: int = 200) -> Response:
    rid = request_id(request)
    return Response(
        orjson.dumps({**body, "request_id": rid}),
        status_code=status,
        media_type="application/json",
        headers={"X-Request-Id": rid},
    )


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object. An empty body, or the JSON string "" that the
    dashscope SDK sends for `Threads.create()`, counts as an empty object."""
    check_content_encoding(request)
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _not_json(raw, exc) from exc
    if data == "":
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", "body")
    if raw.count(b"{") + raw.count(b"[") > JSON_DEPTH_MAX:  # else it cannot be too deep
        check_json_depth(data)
    return data


def check_content_encoding(request: Request) -> None:
    """Bodies are read as sent: a compressed one would otherwise be parsed as text."""
    encoding = request.headers.get("content-encoding", "").strip()
    if encoding and encoding.lower() != "identity":
        raise UnsupportedMediaType(
            f"Content-Encoding '{echo(encoding)}' is not supported; send the request body "
            "uncompressed."
        )


def _not_json(raw: bytes, exc: orjson.JSONDecodeError) -> InvalidRequest:
    """What is wrong, in words: orjson calls bytes that are not UTF-8 "surrogates"."""
    try:
        raw.decode()
    except UnicodeDecodeError as bad:
        return InvalidRequest(
            "The request body is not valid JSON: JSON must be UTF-8, and the byte at "
            f"offset {bad.start} is not.",
            "body",
        )
    if "depth limit exceeded" in str(exc):
        return InvalidRequest(
            f"The request body is nested too deeply: JSON input may nest at most "
            f"{JSON_DEPTH_MAX} objects or arrays.",
            "body",
        )
    return InvalidRequest(f"The request body is not valid JSON: {exc}.", "body")


def parse_body(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from(exc) from exc


def invalid_from(exc: ValidationError) -> InvalidRequest:
    """The first problem pydantic found, phrased with the field's path as core's checks
    write it (`messages[0].metadata`)."""
    error = exc.errors(include_url=False)[0]
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    path = echo(path or "body")
    return InvalidRequest(f"'{path}': {error['msg']}.", path)


def page_request(request: Request, default_order: str = "desc") -> PageRequest:
    query = request.query_params
    limit_text = query.get("limit")
    limit = 20
    if limit_text is not None:
        try:
            limit = int(limit_text)
        except ValueError:
            raise InvalidRequest(
                f"'limit' must be an integer, not '{echo(limit_text)}'.", "limit"
            ) from None
        if not 1 <= limit <= 100:
            raise InvalidRequest("'limit' must be between 1 and 100.", "limit")
    order = query.get("order") or default_order
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"'order' must be 'asc' or 'desc', not '{echo(order)}'.", "order")
    return PageRequest(
        limit=limit,
        order="asc" if order == "asc" else "desc",
        after=query.get("after") or None,
        before=query.get("before") or None,
    )


async def url_without_nul(request: Request) -> None:
    """Ids and cursors from the URL reach SQL as parameters, and PostgreSQL cannot take
    a NUL character in one."""
    parts = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in parts:
        if "\x00" in f"{name}{value}":
            raise InvalidRequest(f"'{name}' must not contain NUL characters (%00).", name)
    if "\x00" in request.scope["path"]:
        raise InvalidRequest("The URL must not contain NUL characters (%00).", "url")


def bearer_token(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>`; None when no key was sent."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, token = header.partition(" ")
    if header and scheme.lower() != "bearer":
        # Name a scheme word like "Basic", never what may be the key itself.
        named = f", not '{scheme} ...'" if scheme.isalpha() and len(scheme) <= 16 else ""
        raise Unauthorized(f"The Authorization header must be 'Bearer <API key>'{named}.")
    return token.strip() or None


def download_headers(filename: str) -> dict[str, str]:
    """An ASCII fallback name plus the exact UTF-8 name (RFC 6266), safe for any filename."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    disposition = f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
    return {"Content-Disposition": disposition}
