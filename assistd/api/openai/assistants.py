"""Assistants (spec section 5): create, retrieve, modify (POST), delete, list."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, parse_body
from assistd.api.openai import render
from assistd.api.openai.deps import service, workspace_id
from assistd.api.openai.pages import page_request
from assistd.api.openai.protocol import AssistantBody
from assistd.api.openai.wire import respond
from assistd.core.service import Service

router = APIRouter()
Ws = Depends(workspace_id)
Svc = Depends(service)


@router.post("/assistants")
async def create(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    body = parse_body(AssistantBody, await json_body(request))
    return respond(request, render.assistant(await svc.create_assistant(ws, body.spec())))


@router.get("/assistants")
async def list_(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    found = await svc.list_assistants(ws, page_request(request))
    return respond(request, render.page(found, render.assistant))


@router.get("/assistants/{assistant_id}")
async def retrieve(
    request: Request, assistant_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    return respond(request, render.assistant(await svc.get_assistant(ws, assistant_id)))


@router.post("/assistants/{assistant_id}")
async def modify(request: Request, assistant_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    body = parse_body(AssistantBody, await json_body(request))
    updated = await svc.update_assistant(ws, assistant_id, body.patch())
    return respond(request, render.assistant(updated))


@router.delete("/assistants/{assistant_id}")
async def delete(request: Request, assistant_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    await svc.delete_assistant(ws, assistant_id)
    return respond(request, render.deleted(assistant_id, "assistant.deleted"))
