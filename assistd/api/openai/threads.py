"""Threads and their messages (spec section 5). There is no `GET /threads`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, parse_body
from assistd.api.openai import render
from assistd.api.openai.deps import run_service, service, workspace_id
from assistd.api.openai.pages import page_request
from assistd.api.openai.protocol import (
    MessageBody,
    MetadataBody,
    ThreadBody,
    ThreadModifyBody,
    ToolResources,
)
from assistd.api.openai.wire import respond
from assistd.core.run_service import RunService
from assistd.core.service import Service
from assistd.errors import InvalidRequest

router = APIRouter()
Ws = Depends(workspace_id)
Svc = Depends(service)


@router.post("/threads")
async def create(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    body = parse_body(ThreadBody, await json_body(request))
    resources = body.tool_resources or ToolResources()
    thread = await svc.create_thread(
        ws,
        body.message_specs(),
        body.metadata,
        resources.file_ids(),
        resources.stores(),
    )
    return respond(request, render.thread(thread))


@router.get("/threads/{thread_id}")
async def retrieve(request: Request, thread_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    return respond(request, render.thread(await svc.get_thread(ws, thread_id)))


@router.post("/threads/{thread_id}")
async def modify(request: Request, thread_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    body = parse_body(ThreadModifyBody, await json_body(request))
    resources = body.tool_resources or ToolResources()
    thread = await svc.update_thread(
        ws, thread_id, body.metadata, resources.file_ids(), resources.stores(update=True).ids
    )
    return respond(request, render.thread(thread))


@router.delete("/threads/{thread_id}")
async def delete(
    request: Request, thread_id: str, ws: str = Ws, runs: RunService = Depends(run_service)
) -> Response:
    await runs.delete_thread(ws, thread_id)
    return respond(request, render.deleted(thread_id, "thread.deleted"))


@router.post("/threads/{thread_id}/messages")
async def create_message(
    request: Request, thread_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    body = parse_body(MessageBody, await json_body(request))
    if body.content is None:
        raise InvalidRequest("'content' is required.", "content")
    message = await svc.create_message(ws, thread_id, body.spec())
    return respond(request, render.message(message))


@router.get("/threads/{thread_id}/messages")
async def list_messages(
    request: Request, thread_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    run_id = request.query_params.get("run_id") or None
    found = await svc.list_messages(ws, thread_id, page_request(request), run_id)
    return respond(request, render.page(found, render.message))


@router.get("/threads/{thread_id}/messages/{message_id}")
async def retrieve_message(
    request: Request, thread_id: str, message_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    return respond(request, render.message(await svc.get_message(ws, thread_id, message_id)))


@router.post("/threads/{thread_id}/messages/{message_id}")
async def modify_message(
    request: Request, thread_id: str, message_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    body = parse_body(MetadataBody, await json_body(request))
    updated = await svc.update_message(ws, thread_id, message_id, body.metadata)
    return respond(request, render.message(updated))


@router.delete("/threads/{thread_id}/messages/{message_id}")
async def delete_message(
    request: Request, thread_id: str, message_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    await svc.delete_message(ws, thread_id, message_id)
    return respond(request, render.deleted(message_id, "thread.message.deleted"))
