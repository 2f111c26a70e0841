"""File batches of a vector store (OpenAI's `/vector_stores/{id}/file_batches`): create,
retrieve, cancel, and list the batch's files. The SDK's `create_and_poll` and
`upload_and_poll` poll the retrieve route until the batch leaves `in_progress`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, parse_body
from assistd.api.openai import render, render_vector
from assistd.api.openai.deps import workspace_id
from assistd.api.openai.pages import page_request
from assistd.api.openai.vector_protocol import BatchBody
from assistd.api.openai.vector_store_files import POLL_AFTER_MS
from assistd.api.openai.wire import respond
from assistd.core.file_batches import FileBatches
from assistd.core.objects import FileBatch

router = APIRouter()
Ws = Depends(workspace_id)
BATCH = "/vector_stores/{vector_store_id}/file_batches"


def file_batches(request: Request) -> FileBatches:
    runtime = request.app.state.runtime
    return FileBatches(runtime.store, runtime.knowledge)


Batches = Depends(file_batches)


def batch_answer(request: Request, batch: FileBatch) -> Response:
    answer = respond(request, render_vector.file_batch(batch))
    if batch.status == "in_progress":
        answer.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return answer


@router.post(BATCH)
async def create(
    request: Request, vector_store_id: str, ws: str = Ws, batches: FileBatches = Batches
) -> Response:
    body = parse_body(BatchBody, await json_body(request))
    return batch_answer(request, await batches.create(ws, vector_store_id, body.entries()))


@router.get(BATCH + "/{batch_id}")
async def retrieve(
    request: Request, vector_store_id: str, batch_id: str, ws: str = Ws,
    batches: FileBatches = Batches,
) -> Response:  # fmt: skip
    return batch_answer(request, await batches.get(ws, vector_store_id, batch_id))


@router.post(BATCH + "/{batch_id}/cancel")
async def cancel(
    request: Request, vector_store_id: str, batch_id: str, ws: str = Ws,
    batches: FileBatches = Batches,
) -> Response:  # fmt: skip
    return batch_answer(request, await batches.cancel(ws, vector_store_id, batch_id))


@router.get(BATCH + "/{batch_id}/files")
async def list_files(
    request: Request, vector_store_id: str, batch_id: str, ws: str = Ws,
    batches: FileBatches = Batches,
) -> Response:  # fmt: skip
    status = request.query_params.get("filter") or None
    found = await batches.list_files(ws, vector_store_id, batch_id, page_request(request), status)
    return respond(request, render.page(found, render_vector.vector_store_file))
