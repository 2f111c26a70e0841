"""Threads, messages and message files (spec section 3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, json_response, page_request, parse_body
from assistd.api.dashscope import render
from assistd.api.dashscope.deps import run_service, service, workspace_id
from assistd.api.dashscope.protocol import MessageBody, MetadataBody, ThreadBody
from assistd.core.run_service import RunService
from assistd.core.service import Service

router = APIRouter()
Ws = Depends(workspace_id)
Svc = Depends(service)


@router.post("/threads")
async def create(request: Request, ws: str = Ws, svc: Service = Svc) -> Response:
    body = parse_body(ThreadBody, await json_body(request))
    specs = [m.spec() for m in body.messages or []]
    return json_response(request, render.thread(await svc.create_thread(ws, specs, body.metadata)))


@router.get("/threads/{thread_id}")
async def retrieve(request: Request, thread_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    return json_response(request, render.thread(await svc.get_thread(ws, thread_id)))


@router.post("/threads/{thread_id}")
async def update(request: Request, thread_id: str, ws: str = Ws, svc: Service = Svc) -> Response:
    body = parse_body(MetadataBody, await json_body(request))
    return json_response(
        request, render.thread(await svc.update_thread(ws, thread_id, body.metadata))
    )


@router.delete("/threads/{thread_id}")
async def delete(
    request: Request, thread_id: str, ws: str = Ws, runs: RunService = Depends(run_service)
) -> Response:
    await runs.delete_thread(ws, thread_id)
    return json_response(request, render.deleted(thread_id, "thread"))


@router.post("/threads/{thread_id}/messages")
async def create_message(
    request: Request, thread_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    body = parse_body(MessageBody, await json_body(request))
    return json_response(
        request, render.message(await svc.create_message(ws, thread_id, body.spec()))
    )


@router.get("/threads/{thread_id}/messages")
async def list_messages(
    request: Request, thread_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    found = await svc.list_messages(ws, thread_id, page_request(request))
    return json_response(request, render.page(found, render.message))


@router.get("/threads/{thread_id}/messages/{message_id}")
async def retrieve_message(
    request: Request, thread_id: str, message_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    return json_response(request, render.message(await svc.get_message(ws, thread_id, message_id)))


@router.post("/threads/{thread_id}/messages/{message_id}")
async def update_message(
    request: Request, thread_id: str, message_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    body = parse_body(MetadataBody, await json_body(request))
    updated = await svc.update_message(ws, thread_id, message_id, body.metadata)
    return json_response(request, render.message(updated))


@router.get("/threads/{thread_id}/messages/{message_id}/files")
async def list_message_files(
    request: Request, thread_id: str, message_id: str, ws: str = Ws, svc: Service = Svc
) -> Response:
    found = await svc.list_message_files(ws, thread_id, message_id, page_request(request))
    return json_response(request, render.page(found, render.message_file))


@router.get("/threads/{thread_id}/messages/{message_id}/files/{file_id}")
async def retrieve_message_file(
    request: Request,
    thread_id: str,
    message_id: str,
    file_id: str,
    ws: str = Ws,
    svc: Service = Svc,
) -> Response:
    link = await svc.get_message_file(ws, thread_id, message_id, file_id)
    return json_response(request, render.message_file(link))
