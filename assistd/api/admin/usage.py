"""Usage and quotas in the admin API: `GET /admin/v1/usage` (token usage by workspace,
key, model and UTC day) and `POST /admin/v1/keys/{key_id}/limits` (a key's own quotas;
a workspace's are among its settings, workspace_settings.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from assistd.api.admin.routes import Admin, _key, _may_manage, _tenancy
from assistd.api.common import json_body, json_response
from assistd.core.objects import JsonDict, Principal
from assistd.core.quotas import check_limits
from assistd.errors import Forbidden, InvalidRequest, NotFound, echo
from assistd.store import usage as sql
from assistd.store.sql import SqlStore

router = APIRouter()


class LimitsBody(BaseModel):
    """null: the server's limit (quota_key_*); 0: no limit."""

    model_config = ConfigDict(extra="forbid", strict=True)
    requests_per_minute: int | None = None
    runs_per_minute: int | None = None
    tokens_per_day: int | None = None


def _store(request: Request) -> SqlStore:
    store: SqlStore = request.app.state.store
    return store


def check_may_limit(who: Principal) -> None:
    """Quotas are the operator's: a workspace's own admin key may read them but not
    change them, or it could lift the limits it was given."""
    if not who.global_admin:
        raise Forbidden(
            "Limits are set with an admin key of the 'default' workspace; this workspace's "
            "admin key may read them but not change them."
        )


def merged_limits(own: JsonDict | None, given: Any, field: str) -> JsonDict | None:
    """`own` with the limits `given` names changed (null: back to the server's; `given`
    null: all of them)."""
    if given is None:
        return None
    checked = check_limits(given, field)
    merged = {**(own or {}), **checked}
    for name, value in (given or {}).items():
        if value is None:
            merged.pop(name, None)
    return merged or None


@router.post("/keys/{key_id}/limits")
async def set_key_limits(request: Request, key_id: str, who: Principal = Admin) -> Response:
    """Changes the limits the body names of one key."""
    tenancy = _tenancy(request)
    key = await tenancy.get_key(key_id)
    if not _may_manage(who, key.workspace_id):
        raise NotFound.of("API key", key_id)
    check_may_limit(who)
    limits = merged_limits(key.limits, await json_body(request), "limits")
    await sql.set_limits(_store(request).writing, "api_keys", key.id, limits)
    return json_response(request, _key(await tenancy.get_key(key_id)))


def _day(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidRequest(
            f"'{field}' must be a day as YYYY-MM-DD (UTC), not '{echo(value)}'.", field
        ) from None


def _groups(value: str | None) -> tuple[str, ...]:
    if value is None:
        return sql.GROUPS
    named = tuple(g.strip() for g in value.split(",") if g.strip())
    for group in named:
        if group not in sql.GROUPS:
            raise InvalidRequest(
                f"'group_by' names '{echo(group)}'; it takes a comma-separated list of: "
                f"{', '.join(sql.GROUPS)}.",
                "group_by",
            )
    return named


async def _workspace_filter(request: Request, who: Principal, workspace: str | None) -> str | None:
    """The workspace the report covers: any for a global admin, else the key's own."""
    if workspace is None:
        return None if who.global_admin else who.key_workspace_id
    found = await _tenancy(request).find_workspace(workspace)
    if not _may_manage(who, found.id):
        raise NotFound.of("workspace", workspace)
    return found.id


@router.get("/usage")
async def usage(
    request: Request,
    workspace: str | None = None,
    key: str | None = None,
    model: str | None = None,
    since: str | None = None,
    until: str | None = None,
    group_by: str | None = None,
    who: Principal = Admin,
) -> Response:
    """Tokens and runs of ended runs, summed per the `group_by` dimensions (workspace,
    key, model, day; default all four), newest day first."""
    where = sql.UsageFilter(
        workspace_id=await _workspace_filter(request, who, workspace),
        key_id=key, model=model, since=_day(since, "since"), until=_day(until, "until"),
        group_by=_groups(group_by),
    )  # fmt: skip
    rows = await sql.report(_store(request).engine, where)
    return json_response(request, {"object": "list", "data": [_render(r) for r in rows]})


def _render(row: JsonDict) -> JsonDict:
    out: JsonDict = {"object": "usage"}
    out.update({k: row[k] for k in sql.COLUMNS.values() if k in row})
    return {**out, **{name: row[name] for name in sql.COUNTS}}
