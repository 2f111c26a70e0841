"""Runs and run steps, streamed or not (spec sections 3, 9 and 10)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, json_response, page_request, parse_body
from assistd.api.dashscope import render
from assistd.api.dashscope.deps import run_service, runs_of, workspace_id
from assistd.api.dashscope.protocol import MetadataBody, RunBody, ThreadRunBody, ToolOutputsBody
from assistd.api.sse import (
    AFTER_PARAM,
    EVENT_IDS_PARAM,
    LAST_EVENT_ID,
    StreamSource,
    frame,
    resume_point,
    resumed_frames,
    run_frames,
    sse_response,
    wants_event_ids,
)
from assistd.core.objects import Run
from assistd.core.run_service import RunService

router = APIRouter()
Ws = Depends(workspace_id)


Runs = Depends(run_service)


def _source(request: Request, ws: str, thread_id: str, run_id: str, ids: bool) -> StreamSource:
    runs = runs_of(request)

    async def stored_run() -> Run | None:
        return await runs.stored_run(ws, thread_id, run_id)

    state = request.app.state
    heartbeat_s = state.settings.sse_heartbeat_s
    return StreamSource(runs.bus, run_id, render.event, stored_run, state.streams, heartbeat_s, ids)


def _stream(
    request: Request,
    ws: str,
    thread_id: str,
    run_id: str,
    after_seq: int,
    ids: bool,
    prefix: bytes = b"",
) -> Response:
    source = _source(request, ws, thread_id, run_id, ids)
    return sse_response(run_frames(source, after_seq, prefix), source.direct)


# Registered before the thread routes: `POST /threads/runs` must not be taken for an
# update of a thread called "runs".
@router.post("/threads/runs")
async def create_thread_and_run(
    request: Request, ws: str = Ws, runs: RunService = Runs
) -> Response:
    body = parse_body(ThreadRunBody, await json_body(request))
    ids = body.stream is True and wants_event_ids(request)
    thread_body = body.thread
    messages = [m.spec() for m in (thread_body.messages if thread_body else None) or []]
    metadata = thread_body.metadata if thread_body else None
    thread, run = await runs.create_thread_and_run(ws, messages, metadata, body.spec())
    if body.stream:
        # not a bus event: as event 0 it leaves a resuming client nothing to skip
        prefix = frame("thread.created", render.thread(thread), 0 if ids else None)
        return _stream(request, ws, thread.id, run.id, 0, ids, prefix)
    return json_response(request, render.run(run))


@router.post("/threads/{thread_id}/runs")
async def create(
    request: Request, thread_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    body = parse_body(RunBody, await json_body(request))
    ids = body.stream is True and wants_event_ids(request)
    run = await runs.create_run(ws, thread_id, body.spec())
    if body.stream:
        return _stream(request, ws, thread_id, run.id, 0, ids)
    return json_response(request, render.run(run))


@router.get("/threads/{thread_id}/runs")
async def list_(
    request: Request, thread_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    found = await runs.list_runs(ws, thread_id, page_request(request))
    return json_response(request, render.page(found, render.run))


@router.get("/threads/{thread_id}/runs/{run_id}")
async def retrieve(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    return json_response(request, render.run(await runs.get_run(ws, thread_id, run_id)))


@router.post("/threads/{thread_id}/runs/{run_id}")
async def update(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    body = parse_body(MetadataBody, await json_body(request))
    return json_response(
        request, render.run(await runs.update_run(ws, thread_id, run_id, body.metadata))
    )


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    return json_response(request, render.run(await runs.cancel_run(ws, thread_id, run_id)))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    body = parse_body(ToolOutputsBody, await json_body(request))
    ids = body.stream is True and wants_event_ids(request)
    run, start = await runs.submit_tool_outputs(ws, thread_id, run_id, body.outputs())
    if body.stream:
        return _stream(request, ws, thread_id, run.id, start, ids)
    return json_response(request, render.run(run))


_RESUME_PARAMETERS = [
    {
        "name": "Last-Event-ID",
        "in": "header",
        "description": "The last event sequence number the client saw; wins over `after`.",
        "schema": {"type": "integer", "minimum": 0},
    },
    {
        "name": AFTER_PARAM,
        "in": "query",
        "description": "The last event sequence number the client saw (default 0: all).",
        "schema": {"type": "integer", "minimum": 0},
    },
    {
        "name": EVENT_IDS_PARAM,
        "in": "query",
        "description": "`true`: an `id:<seq>` line before each event (also the header "
        "`X-Assistd-Event-Ids: true`, or sending `Last-Event-ID`).",
        "schema": {"type": "boolean", "default": False},
    },
]


_EVENT_STREAM = {
    "200": {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
}


@router.get(
    "/threads/{thread_id}/runs/{run_id}/events",
    summary="Resume a run's stream",
    openapi_extra={"parameters": _RESUME_PARAMETERS, "responses": _EVENT_STREAM},
)
async def events(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    """Resumes a run's stream (an assistd extension): the run's events after the given
    sequence number, to the end of that leg, as the streaming call would have sent them.
    410 when the run's events are no longer kept: retrieve the run instead."""
    after = resume_point(request)
    ids = wants_event_ids(request) or LAST_EVENT_ID in request.headers
    await runs.get_run(ws, thread_id, run_id)  # another workspace's run is a 404
    source = _source(request, ws, thread_id, run_id, ids)
    return sse_response(await resumed_frames(source, after), source.direct)


@router.get("/threads/{thread_id}/runs/{run_id}/steps")
async def list_steps(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    found = await runs.list_steps(ws, thread_id, run_id, page_request(request))
    return json_response(request, render.page(found, render.step))


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def retrieve_step(
    request: Request,
    thread_id: str,
    run_id: str,
    step_id: str,
    ws: str = Ws,
    runs: RunService = Runs,
) -> Response:
    return json_response(request, render.step(await runs.get_step(ws, thread_id, run_id, step_id)))
