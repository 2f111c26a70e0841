"""List queries with OpenAI's semantics: `limit` 1..100 (default 20), `order` asc|desc
(default desc: newest first, which clients rely on with `limit=1`), and the `after` and
`before` cursors, which may come together (the SDK's auto-pager adds `after` to the
original query)."""

from __future__ import annotations

from fastapi import Request

from assistd.core.objects import PageRequest
from assistd.errors import InvalidRequest, echo

LIMIT_DEFAULT = 20
LIMIT_MAX = 100


def _limit(text: str | None, default: int, maximum: int) -> int:
    if text is None or text == "":
        return default
    try:
        limit = int(text)
    except ValueError:
        raise InvalidRequest(f"'limit' must be an integer, not '{echo(text)}'.", "limit") from None
    if not 1 <= limit <= maximum:
        raise InvalidRequest(f"'limit' must be between 1 and {maximum}, not {limit}.", "limit")
    return limit


def page_request(
    request: Request,
    default_limit: int = LIMIT_DEFAULT,
    max_limit: int = LIMIT_MAX,
    allow_before: bool = True,
) -> PageRequest:
    query = request.query_params
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"'order' must be 'asc' or 'desc', not '{echo(order)}'.", "order")
    before = query.get("before") or None
    if before is not None and not allow_before:
        raise InvalidRequest("This list takes 'after', not 'before'.", "before")
    return PageRequest(
        limit=_limit(query.get("limit"), default_limit, max_limit),
        order="asc" if order == "asc" else "desc",
        after=query.get("after") or None,
        before=before,
    )
