"""Plugins: a workspace's custom tools (an assistd extension of the DashScope surface).

`POST /plugins` registers an OpenAPI 3 document or an MCP server under a plugin id, which
assistants then name as a tool type: `{"type": "<plugin_id>"}`. Credentials are written
here and never read back.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, json_response, page_request, parse_body
from assistd.api.dashscope import render
from assistd.api.dashscope.deps import workspace_id
from assistd.api.dashscope.protocol import PluginBody
from assistd.core.plugins import PluginService

router = APIRouter()
Ws = Depends(workspace_id)


async def plugin_service(request: Request) -> PluginService:
    plugins: PluginService = request.app.state.plugins
    return plugins


Plugins = Depends(plugin_service)


@router.post("/plugins")
async def register(request: Request, ws: str = Ws, svc: PluginService = Plugins) -> Response:
    """Registers a plugin in the workspace (assistd extension)."""
    body = parse_body(PluginBody, await json_body(request))
    return json_response(request, render.plugin(await svc.register(ws, body.spec())))


@router.get("/plugins")
async def list_(request: Request, ws: str = Ws, svc: PluginService = Plugins) -> Response:
    """The workspace's plugins, without their documents (assistd extension)."""
    found = await svc.list(ws, page_request(request))
    return json_response(request, render.page(found, render.plugin_listed))


@router.get("/plugins/{plugin_id}")
async def retrieve(
    request: Request, plugin_id: str, ws: str = Ws, svc: PluginService = Plugins
) -> Response:
    """A plugin of the workspace, or one the configuration declares (assistd extension)."""
    return json_response(request, render.plugin(await svc.get(ws, plugin_id)))


@router.post("/plugins/{plugin_id}")
async def update(
    request: Request, plugin_id: str, ws: str = Ws, svc: PluginService = Plugins
) -> Response:
    """Replaces the fields sent; the others stay (assistd extension)."""
    body = parse_body(PluginBody, await json_body(request))
    return json_response(request, render.plugin(await svc.update(ws, plugin_id, body.spec())))


@router.delete("/plugins/{plugin_id}")
async def delete(
    request: Request, plugin_id: str, ws: str = Ws, svc: PluginService = Plugins
) -> Response:
    """Deletes a plugin; assistants that name it no longer get its tools (assistd extension)."""
    await svc.delete(ws, plugin_id)
    return json_response(request, render.deleted(plugin_id, "plugin"))
