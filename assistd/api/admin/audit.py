"""GET /admin/v1/audit: the audit log, newest first, for admin keys.

An admin key of `default` reads every workspace's records; an admin key of another
workspace only its own workspace's; other keys none (403). Filters: `since`, `until`
(ms, ISO 8601, or an age such as `7d`), `workspace` (id or name), `key_id`,
`object_id`, `method`; pages of `limit` (1-100, default 20) continued with `after`
(the `last_id` of the page before).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assistd.api.admin.routes import Admin, _tenancy
from assistd.api.audit import MUTATING
from assistd.api.common import json_response
from assistd.core import audit
from assistd.core.objects import Principal
from assistd.errors import InvalidRequest, NotFound, echo
from assistd.store.audit import AuditQuery
from assistd.store.sql import SqlStore

router = APIRouter()
MAX_LIMIT = 100
FILTERS = ("since", "until", "workspace", "key_id", "object_id", "method", "limit", "after")


def entry(row: dict[str, Any]) -> dict[str, Any]:
    """One record as the API and `assistd audit --json` show it."""
    return {
        "id": row["seq"], "object": "audit.entry", "created_at": row["at"],
        "request_id": row["request_id"], "key_id": row["key_id"],
        "workspace_id": row["workspace"], "method": row["method"], "route": row["route"],
        "path": row["path"], "object_ids": row["object_ids"], "status": row["status"],
        "error_code": row["error_code"], "body": row["body"],
    }  # fmt: skip


def _int(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(f"'{name}' must be a whole number from {low} to {high}.", name)
    return int(value)


def _method(value: str | None) -> str | None:
    if value is None:
        return None
    if value.upper() not in MUTATING:
        raise InvalidRequest(
            f"'method' must be one of {', '.join(sorted(MUTATING))}, not '{echo(value)}'.",
            "method",
        )
    return value.upper()


async def _workspace(request: Request, value: str | None, who: Principal) -> str | None:
    """The workspace filter as an id; a key that is not `default`'s admin reads its own."""
    if value is None:
        return None if who.global_admin else who.key_workspace_id
    try:
        found = (await _tenancy(request).find_workspace(value)).id
    except NotFound:
        if not (who.global_admin and value.startswith("ws_")):
            raise
        found = value  # a deleted workspace's records stay
    if not who.global_admin and found != who.key_workspace_id:
        raise NotFound.of("workspace", value)  # the same answer as for a missing one
    return found


async def audit_query(request: Request, who: Principal) -> AuditQuery:
    params = request.query_params
    for name in params:
        if name not in FILTERS:
            raise InvalidRequest(
                f"'{echo(name)}' is not a filter of the audit log; the filters are: "
                f"{', '.join(FILTERS)}.",
                name,
            )
    since, until = params.get("since"), params.get("until")
    return AuditQuery(
        since=audit.parse_time(since, "since") if since is not None else None,
        until=audit.parse_time(until, "until") if until is not None else None,
        workspace=await _workspace(request, params.get("workspace"), who),
        key_id=params.get("key_id"), object_id=params.get("object_id"),
        method=_method(params.get("method")),
        before=_int(params.get("after"), "after", 1, 2**62),
        limit=_int(params.get("limit"), "limit", 1, MAX_LIMIT) or 20,
    )  # fmt: skip


@router.get("/audit")
async def read_audit(request: Request, who: Principal = Admin) -> Response:
    store: SqlStore = request.app.state.store
    rows, more = await audit.query(store, await audit_query(request, who))
    data = [entry(r) for r in rows]
    page = {
        "object": "list", "data": data, "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }  # fmt: skip
    return json_response(request, page)
