"""Files of a vector store (OpenAI's `/vector_stores/{id}/files`): add (ingestion starts
at once), list with `filter`, retrieve, update attributes, remove, and the parsed
content. A file's id is the File's id."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, parse_body
from assistd.api.openai import render, render_vector
from assistd.api.openai.deps import workspace_id
from assistd.api.openai.pages import page_request
from assistd.api.openai.vector_protocol import AttributesBody, VectorStoreFileBody
from assistd.api.openai.vector_stores import Vs
from assistd.api.openai.wire import respond
from assistd.core.objects import VectorStoreFile
from assistd.core.vector_stores import VectorStores

router = APIRouter()
Ws = Depends(workspace_id)
POLL_AFTER_MS = "200"  # the SDK's *_and_poll helpers wait this long between reads


def file_answer(request: Request, file: VectorStoreFile) -> Response:
    answer = respond(request, render_vector.vector_store_file(file))
    if file.status == "in_progress":
        answer.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return answer


@router.post("/vector_stores/{vector_store_id}/files")
async def create(
    request: Request, vector_store_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    body = parse_body(VectorStoreFileBody, await json_body(request))
    file = await stores.add_file(
        ws, vector_store_id, body.required_id(), strategy=body.strategy(),
        attributes=body.attributes,
    )  # fmt: skip
    return file_answer(request, file)


@router.get("/vector_stores/{vector_store_id}/files")
async def list_(
    request: Request, vector_store_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    status = request.query_params.get("filter") or None
    found = await stores.list_files(ws, vector_store_id, page_request(request), status)
    return respond(request, render.page(found, render_vector.vector_store_file))


@router.get("/vector_stores/{vector_store_id}/files/{file_id}")
async def retrieve(
    request: Request, vector_store_id: str, file_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    return file_answer(request, await stores.get_file(ws, vector_store_id, file_id))


@router.post("/vector_stores/{vector_store_id}/files/{file_id}")
async def update(
    request: Request, vector_store_id: str, file_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    body = parse_body(AttributesBody, await json_body(request))
    file = await stores.update_file(ws, vector_store_id, file_id, body.required())
    return file_answer(request, file)


@router.delete("/vector_stores/{vector_store_id}/files/{file_id}")
async def delete(
    request: Request, vector_store_id: str, file_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    await stores.remove_file(ws, vector_store_id, file_id)
    return respond(request, render.deleted(file_id, "vector_store.file.deleted"))


@router.get("/vector_stores/{vector_store_id}/files/{file_id}/content")
async def content(
    request: Request, vector_store_id: str, file_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    texts = await stores.file_content(ws, vector_store_id, file_id)
    return respond(request, render_vector.content_page(texts))
