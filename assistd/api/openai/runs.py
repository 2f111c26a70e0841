"""Runs and run steps, streamed or not (spec sections 5, 6.4-6.6, 8 and 9).

A stream is the run's events rendered OpenAI's way (`render_runs.EventRenderer`), framed
`event: <name>` / `data: <json>` without `id:` lines, ending with `event: done` /
`data: [DONE]` and then the body. A client that leaves early leaves the run running.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assistd.api.common import json_body, parse_body
from assistd.api.openai import render, render_runs
from assistd.api.openai.deps import run_service, workspace_id
from assistd.api.openai.pages import page_request
from assistd.api.openai.protocol import MetadataBody, RunBody, ThreadRunBody, ToolOutputsBody
from assistd.api.openai.wire import respond
from assistd.api.sse import OPENAI, StreamSource, run_frames, spaced_frame, sse_response
from assistd.core import runs as rs
from assistd.core.objects import Run
from assistd.core.run_service import RunService
from assistd.core.service import run_vector_store_ids
from assistd.errors import InvalidRequest, echo

router = APIRouter()
Ws = Depends(workspace_id)
Runs = Depends(run_service)
# How long the SDK's poll helpers wait between polls (read once, from the first answer
# that is not final). Their default, 1 s, makes a short run look slow.
POLL_AFTER_MS = "200"
STORES = "tool_resources.file_search.vector_store_ids"


def _content(request: Request) -> bool:
    """Whether `include[]` (or `include`) asks for file_search results' text, the one
    value OpenAI knows; another is a 400 naming it."""
    values = request.query_params.getlist("include[]") + request.query_params.getlist("include")
    for value in values:
        if value != render_runs.RESULT_CONTENT:
            raise InvalidRequest(
                f"'include' cannot hold '{echo(value)}': the one value known is "
                f"'{render_runs.RESULT_CONTENT}'.",
                "include",
            )
    return bool(values)


def _stream(
    request: Request, ws: str, thread_id: str, run_id: str, after_seq: int, prefix: bytes = b""
) -> Response:
    runs: RunService = request.app.state.runs

    async def stored_run() -> Run | None:
        return await runs.stored_run(ws, thread_id, run_id)

    state = request.app.state
    source = StreamSource(
        runs.bus, run_id, render_runs.EventRenderer(_content(request)), stored_run, state.streams,
        state.settings.sse_heartbeat_s, framing=OPENAI,
    )  # fmt: skip
    return sse_response(run_frames(source, after_seq, prefix), source.direct)


def _run_answer(request: Request, run: Run) -> Response:
    answer = respond(request, render_runs.run(run))
    if not rs.is_terminal(run.status) and run.status != rs.RunStatus.REQUIRES_ACTION:
        answer.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return answer


# Registered before the thread routes: `POST /threads/runs` is not an update of a
# thread called "runs".
@router.post("/threads/runs")
async def create_thread_and_run(
    request: Request, ws: str = Ws, runs: RunService = Runs
) -> Response:
    body = parse_body(ThreadRunBody, await json_body(request))
    given = body.thread
    own = body.tool_resources
    run_vector_store_ids((own.stores().ids or own.stores().inline) if own else None, STORES)
    resources = given.tool_resources if given else None
    thread, run = await runs.create_thread_and_run(
        ws,
        given.message_specs() if given else [],
        given.metadata if given else None,
        body.spec(),
        body.thread_file_ids(),
        resources.stores() if resources else None,
    )
    if body.stream:
        prefix = spaced_frame("thread.created", render.thread(thread))
        return _stream(request, ws, thread.id, run.id, 0, prefix)
    return _run_answer(request, run)


@router.post("/threads/{thread_id}/runs")
async def create(
    request: Request, thread_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    body = parse_body(RunBody, await json_body(request))
    _content(request)  # a bad include[] is refused before the run is made
    run = await runs.create_run(ws, thread_id, body.spec())
    if body.stream:
        return _stream(request, ws, thread_id, run.id, 0)
    return _run_answer(request, run)


@router.get("/threads/{thread_id}/runs")
async def list_(
    request: Request, thread_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    found = await runs.list_runs(ws, thread_id, page_request(request))
    return respond(request, render.page(found, render_runs.run))


@router.get("/threads/{thread_id}/runs/{run_id}")
async def retrieve(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    return _run_answer(request, await runs.get_run(ws, thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}")
async def modify(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    body = parse_body(MetadataBody, await json_body(request))
    return respond(
        request, render_runs.run(await runs.update_run(ws, thread_id, run_id, body.metadata))
    )


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    return _run_answer(request, await runs.cancel_run(ws, thread_id, run_id))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    body = parse_body(ToolOutputsBody, await json_body(request))
    run, start = await runs.submit_tool_outputs(ws, thread_id, run_id, body.outputs())
    if body.stream:
        return _stream(request, ws, thread_id, run.id, start)
    return _run_answer(request, run)


@router.get("/threads/{thread_id}/runs/{run_id}/steps")
async def list_steps(
    request: Request, thread_id: str, run_id: str, ws: str = Ws, runs: RunService = Runs
) -> Response:
    content = _content(request)
    found = await runs.list_steps(ws, thread_id, run_id, page_request(request))
    return respond(request, render.page(found, lambda st: render_runs.step(st, content)))


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def retrieve_step(
    request: Request,
    thread_id: str,
    run_id: str,
    step_id: str,
    ws: str = Ws,
    runs: RunService = Runs,
) -> Response:
    content = _content(request)
    found = await runs.get_step(ws, thread_id, run_id, step_id)
    return respond(request, render_runs.step(found, content))
