"""Assistants and assistant files (spec section 3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, json_response, page_request, parse_body
from assistd.api.dashscope import render
from assistd.api.dashscope.deps import service, workspace_id
from assistd.api.dashscope.protocol import AssistantBody, AssistantFileBody
from assistd.core.service import Service

router = APIRouter()
Ws = Depends(workspace_id)
Svc = Depends(service)


@router.post("/assistants")
async def create(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    body = parse_body(AssistantBody, await json_body(request))
    return json_response(request, render.assistant(await svc.create_assistant(ws, body.spec())))


@router.get("/assistants")
async def list_(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    found = await svc.list_assistants(ws, page_request(request))
    return json_response(request, render.page(found, render.assistant))


@router.get("/assistants/{assistant_id}")
async def retrieve(
    request: Request, assistant_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    return json_response(request, render.assistant(await svc.get_assistant(ws, assistant_id)))


@router.post("/assistants/{assistant_id}")
async def update(request: Request, assistant_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    body = parse_body(AssistantBody, await json_body(request))
    updated = await svc.update_assistant(ws, assistant_id, body.patch())
    return json_response(request, render.assistant(updated))


@router.delete("/assistants/{assistant_id}")
async def delete(request: Request, assistant_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    await svc.delete_assistant(ws, assistant_id)
    return json_response(request, render.deleted(assistant_id, "assistant"))


@router.post("/assistants/{assistant_id}/files")
async def attach_file(
    request: Request, assistant_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    body = parse_body(AssistantFileBody, await json_body(request))
    link = await svc.attach_assistant_file(ws, assistant_id, body.file_id)
    return json_response(request, render.assistant_file(link))


@router.get("/assistants/{assistant_id}/files")
async def list_files(
    request: Request, assistant_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    found = await svc.list_assistant_files(ws, assistant_id, page_request(request))
    return json_response(request, render.page(found, render.assistant_file))


@router.get("/assistants/{assistant_id}/files/{file_id}")
async def retrieve_file(
    request: Request, assistant_id: str, file_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    link = await svc.get_assistant_file(ws, assistant_id, file_id)
    return json_response(request, render.assistant_file(link))


@router.delete("/assistants/{assistant_id}/files/{file_id}")
async def detach_file(
    request: Request, assistant_id: str, file_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    await svc.detach_assistant_file(ws, assistant_id, file_id)
    return json_response(request, render.deleted(file_id, "assistant.file"))
