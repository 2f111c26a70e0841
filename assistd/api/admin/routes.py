"""Admin REST API under /admin/v1: workspaces and API keys, for admin keys only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from assistd.api.common import json_body, json_response, parse_body
from assistd.api.dashscope.deps import principal
from assistd.core.objects import ApiKey, Principal, Workspace
from assistd.core.tenancy import Tenancy
from assistd.errors import Forbidden, InvalidRequest, NotFound

router = APIRouter()


class WorkspaceBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    workspace: str | None = None
    admin: bool = False
    name: str = ""


async def admin_principal(request: Request) -> Principal:
    who = await principal(request)
    if not who.admin:
        raise Forbidden("This endpoint needs an admin API key.")
    return who


Admin = Depends(admin_principal)


def _tenancy(request: Request) -> Tenancy:
    tenancy: Tenancy = request.app.state.tenancy
    return tenancy


def _workspace(w: Workspace) -> dict[str, Any]:
    return {"id": w.id, "object": "workspace", "name": w.name, "created_at": w.created_at}


def _key(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "object": "api_key",
        "workspace_id": k.workspace_id,
        "name": k.name,
        "prefix": k.prefix,
        "admin": k.admin,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
        "bootstrap": k.bootstrap,
        "limits": k.limits or {},
    }


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items}


def _may_manage(who: Principal, workspace_id: str) -> bool:
    return who.global_admin or who.key_workspace_id == workspace_id


@router.post("/workspaces")
async def create_workspace(request: Request, who: Principal = Admin) -> Response:
    if not who.global_admin:
        raise Forbidden("Only an admin key of the 'default' workspace may create workspaces.")
    body = parse_body(WorkspaceBody, await json_body(request))
    return json_response(request, _workspace(await _tenancy(request).create_workspace(body.name)))


@router.get("/workspaces")
async def list_workspaces(request: Request, who: Principal = Admin) -> Response:
    found = await _tenancy(request).list_workspaces()
    visible = [_workspace(w) for w in found if _may_manage(who, w.id)]
    return json_response(request, _listing(visible))


@router.delete("/workspaces/{workspace}")
async def delete_workspace(
    request: Request, workspace: str, force: bool = False, who: Principal = Admin
) -> Response:
    """Deletes a workspace (by id or name) and its keys; with ?force=true also everything
    in it. Refused before any lookup for other keys, so it tells them nothing."""
    if not who.global_admin:
        raise Forbidden("Only an admin key of the 'default' workspace may delete workspaces.")
    deleted = await _tenancy(request).delete_workspace(workspace, force=force)
    body = {"id": deleted.id, "object": "workspace.deleted", "name": deleted.name}
    return json_response(request, {**body, "deleted": True})


@router.post("/keys")
async def create_key(request: Request, who: Principal = Admin) -> Response:
    body = parse_body(KeyBody, await json_body(request))
    if body.workspace is None:
        raise InvalidRequest(
            "'workspace' is required: the name or id of the workspace the key acts in.",
            "workspace",
        )
    tenancy = _tenancy(request)
    target = await tenancy.find_workspace(body.workspace)
    if not _may_manage(who, target.id):  # the same answer as for a missing workspace
        raise NotFound.of("workspace", body.workspace)
    key, secret = await tenancy.create_key(target.id, admin=body.admin, name=body.name)
    return json_response(request, {**_key(key), "key": secret})


@router.get("/keys")
async def list_keys(request: Request, who: Principal = Admin) -> Response:
    scope = None if who.global_admin else who.key_workspace_id
    keys = await _tenancy(request).list_keys(scope)
    return json_response(request, _listing([_key(k) for k in keys]))


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, who: Principal = Admin) -> Response:
    tenancy = _tenancy(request)
    key = await tenancy.get_key(key_id)
    if not _may_manage(who, key.workspace_id):
        raise NotFound.of("API key", key_id)
    await tenancy.revoke_key(key_id)
    return json_response(request, _key(await tenancy.get_key(key_id)))
