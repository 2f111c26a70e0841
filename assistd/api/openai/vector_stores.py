"""Vector stores (OpenAI's `/vector_stores`): create, list, retrieve, modify, delete, and
search. Files of a store are in vector_store_files.py."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, parse_body
from assistd.api.openai import render, render_vector
from assistd.api.openai.deps import workspace_id
from assistd.api.openai.pages import page_request
from assistd.api.openai.vector_protocol import SearchBody, VectorStoreBody, VectorStoreModifyBody
from assistd.api.openai.wire import respond
from assistd.core.vector_stores import VectorStores

router = APIRouter()
Ws = Depends(workspace_id)


def vector_stores(request: Request) -> VectorStores:
    runtime = request.app.state.runtime
    return VectorStores(runtime.store, runtime.knowledge)


Vs = Depends(vector_stores)


@router.post("/vector_stores")
async def create(request: Request, ws: str = Ws, stores: VectorStores = Vs) -> Response:
    body = parse_body(VectorStoreBody, await json_body(request))
    return respond(request, render_vector.vector_store(await stores.create(ws, body.spec())))


@router.get("/vector_stores")
async def list_(request: Request, ws: str = Ws, stores: VectorStores = Vs) -> Response:
    found = await stores.list_stores(ws, page_request(request))
    return respond(request, render.page(found, render_vector.vector_store))


@router.get("/vector_stores/{vector_store_id}")
async def retrieve(
    request: Request, vector_store_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    return respond(request, render_vector.vector_store(await stores.get(ws, vector_store_id)))


@router.post("/vector_stores/{vector_store_id}")
async def modify(
    request: Request, vector_store_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    body = parse_body(VectorStoreModifyBody, await json_body(request))
    updated = await stores.update(ws, vector_store_id, **body.changes())
    return respond(request, render_vector.vector_store(updated))


@router.delete("/vector_stores/{vector_store_id}")
async def delete(
    request: Request, vector_store_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    await stores.delete(ws, vector_store_id)
    return respond(request, render.deleted(vector_store_id, "vector_store.deleted"))


@router.post("/vector_stores/{vector_store_id}/search")
async def search(
    request: Request, vector_store_id: str, ws: str = Ws, stores: VectorStores = Vs
) -> Response:
    body = parse_body(SearchBody, await json_body(request))
    queries = body.queries()
    count = body.max_num_results
    hits = await stores.search(
        ws, vector_store_id, queries, max_results=10 if count is None else count,
        score_threshold=body.threshold(), filters=body.filters,
    )  # fmt: skip
    return respond(request, render_vector.search_page(queries, hits))
