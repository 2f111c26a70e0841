"""Per-workspace settings under /admin/v1/workspaces/{workspace}/settings.

`thread_ttl_seconds`, the time-to-live of the workspace's idle threads (null: the
server's `thread_ttl_s`; 0: never), which a thread's metadata key `expires_after_seconds`
overrides (core/ttl_rules.py); `limits`, the workspace's quotas (core/quotas.py), of
which each one named changes (null: the server's `quota_workspace_*`; 0: no limit).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from assistd.api.admin.routes import Admin, _may_manage, _tenancy
from assistd.api.admin.usage import LimitsBody, check_may_limit, merged_limits
from assistd.api.common import json_body, json_response
from assistd.core.objects import Principal, Workspace
from assistd.core.quotas import KINDS
from assistd.core.ttl_rules import check_ttl
from assistd.errors import InvalidRequest, NotFound
from assistd.store import thread_ttl as sql
from assistd.store import usage as usage_sql
from assistd.store.sql import SqlStore

router = APIRouter()
FIELDS = ("thread_ttl_seconds", "limits")


class SettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    thread_ttl_seconds: int | None = None
    limits: LimitsBody | None = None


async def _target(request: Request, workspace: str, who: Principal) -> Workspace:
    found = await _tenancy(request).find_workspace(workspace)
    if not _may_manage(who, found.id):  # the same answer as for a missing workspace
        raise NotFound.of("workspace", workspace)
    return found


def _store(request: Request) -> SqlStore:
    store: SqlStore = request.app.state.store
    return store


async def _body(request: Request, ws: Workspace) -> dict[str, Any]:
    ttl = await sql.workspace_ttl(_store(request).engine, ws.id)
    settings = request.app.state.settings
    server_limits = {k: getattr(settings, f"quota_workspace_{k}") for k in KINDS}
    return {
        "object": "workspace.settings", "workspace_id": ws.id, "thread_ttl_seconds": ttl,
        "server_thread_ttl_seconds": settings.thread_ttl_s, "limits": ws.limits or {},
        "server_limits": server_limits,
    }  # fmt: skip


@router.get("/workspaces/{workspace}/settings")
async def get_settings(request: Request, workspace: str, who: Principal = Admin) -> Response:
    ws = await _target(request, workspace, who)
    return json_response(request, await _body(request, ws))


@router.post("/workspaces/{workspace}/settings")
async def update_settings(request: Request, workspace: str, who: Principal = Admin) -> Response:
    """Changes the settings the body names; a setting set to null goes back to the
    server's."""
    data = await json_body(request)
    for name in data:
        if name not in FIELDS:
            raise InvalidRequest(
                f"'{name}' is not a workspace setting; the settings are: {', '.join(FIELDS)}.",
                name,
            )
    ws = await _target(request, workspace, who)
    if "limits" in data:
        check_may_limit(who)
    # Every value checked before any is written: a bad one changes nothing.
    ttl = check_ttl(data.get("thread_ttl_seconds"), "thread_ttl_seconds")
    limits = merged_limits(ws.limits, data.get("limits"), "limits")
    if "thread_ttl_seconds" in data:
        await sql.set_workspace_ttl(_store(request).writing, ws.id, ttl)
    if "limits" in data:
        await usage_sql.set_limits(_store(request).writing, "workspaces", ws.id, limits)
    return json_response(request, await _body(request, await _target(request, workspace, who)))
