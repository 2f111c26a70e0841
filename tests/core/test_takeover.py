"""A run whose worker stopped mid-way is taken over from what it committed, in the
runtime's own parts (a real store on both backends, the in-process event bus, the real
executor, the scripted model over HTTP). A worker "stops" as a killed one would: its task
is cancelled mid-stream and writes nothing more.

What a reader of the run's event log sees: the cut-off message is finished (incomplete)
before the new turn creates its own, and no message id gets its text twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from assistd.core.events import MessageDelta, RunEvent
from assistd.core.objects import Message, PageRequest, RunStep
from assistd.core.run_service import RunSpec, ToolOutput
from assistd.core.service import AssistantSpec, MessageSpec
from assistd.queue.base import RunJob
from assistd.runtime import Runtime, build_runtime
from assistd.settings import Settings
from tests.runs.helpers import WEATHER
from tests.support.fake_model import FakeModel, Gate, Reply, ToolCalls

LONG = " ".join(f"word{i}" for i in range(200))


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, fake_model: FakeModel
) -> Iterator[Settings]:
    url = str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else ""
    yield Settings(data_dir=tmp_path, database_url=url, openai_base_url=fake_model.base_url)


@pytest_asyncio.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    built = build_runtime(settings)
    try:
        await built.store.migrate()
        yield built
    finally:
        await built.close()


@dataclass
class Started:
    job: RunJob
    model: str


async def _start(runtime: Runtime, fake_model: FakeModel, *turns: Reply) -> Started:
    """A queued run of a new assistant on the scripted `turns` (no worker takes it)."""
    model = fake_model.new_model(*turns)
    workspace = await runtime.tenancy.create_workspace(f"takeover-{model}")
    assistant = await runtime.service.create_assistant(workspace.id, AssistantSpec(model=model))
    thread, run = await runtime.runs.create_thread_and_run(
        workspace.id, [MessageSpec("Tell me.")], None, RunSpec(assistant.id)
    )
    return Started(RunJob(workspace.id, thread.id, run.id), model)


async def _events(runtime: Runtime, run_id: str) -> list[RunEvent]:
    return await runtime.bus.read(run_id, 0, 0, limit=10_000)


async def _stop_worker_mid_reply(runtime: Runtime, job: RunJob) -> None:
    """Runs the job until part of the reply went out as deltas, then stops its worker."""
    holder = await _mid_reply(runtime, job)
    holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder


async def _mid_reply(runtime: Runtime, job: RunJob) -> asyncio.Task[None]:
    """A worker executing the job, once part of its reply went out as deltas."""
    holder = asyncio.create_task(runtime.workers.executor.execute(job))
    for _ in range(500):
        deltas = [e for e in await _events(runtime, job.run_id) if e.name.endswith("delta")]
        if len(deltas) >= 3:
            return holder
        await asyncio.sleep(0.02)
    pytest.fail("the reply never started")


async def _stored(runtime: Runtime, job: RunJob) -> tuple[str, list[Message], list[RunStep]]:
    async with runtime.store.workspace(job.workspace_id) as unit:
        run = await unit.runs.get(job.thread_id, job.run_id)
        messages = await unit.messages.page(job.thread_id, PageRequest(limit=100, order="asc"))
        steps = await unit.steps.all_of(job.run_id)
    assert run is not None
    return run.status, messages.items, steps


def _texts_by_message(events: list[RunEvent]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for event in events:
        if isinstance(event.data, MessageDelta):
            texts[event.data.message_id] = texts.get(event.data.message_id, "") + event.data.text
    return texts


async def test_a_cut_off_reply_is_asked_again_and_replaces_the_partial_one(
    runtime: Runtime, fake_model: FakeModel
) -> None:
    started = await _start(runtime, fake_model, Reply(LONG, tokens_per_s=20), Reply("Whole."))
    await _stop_worker_mid_reply(runtime, started.job)
    status, messages, steps = await _stored(runtime, started.job)
    assert status == "in_progress" and messages[-1].status == "in_progress"  # as a crash leaves

    await runtime.workers.executor.execute(started.job)  # the takeover

    status, messages, steps = await _stored(runtime, started.job)
    assert status == "completed"
    assert [(m.role, m.status) for m in messages] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert messages[1].content[0]["text"]["value"] == "Whole."
    assert [(s.type, s.status) for s in steps] == [("message_creation", "completed")]
    assert len(fake_model.requests(started.model)) == 2

    events = await _events(runtime, started.job.run_id)
    names = [(e.name, getattr(e.data, "id", None)) for e in events]
    created = [i for name, i in names if name == "thread.message.created"]
    assert len(created) == 2 and created[1] == messages[1].id
    partial, whole = created
    # The partial message is finished before the new one is created; each id's deltas
    # read as one coherent text.
    assert names.index(("thread.message.incomplete", partial)) < names.index(
        ("thread.message.created", whole)
    )
    texts = _texts_by_message(events)
    assert texts[whole] == "Whole."
    assert LONG.startswith(texts[partial]) and texts[partial] != LONG
    assert names[-1][0] == "thread.run.completed"


async def test_a_run_taken_over_while_cancelling_ends_cancelled(
    runtime: Runtime, fake_model: FakeModel
) -> None:
    started = await _start(runtime, fake_model, Reply(LONG, tokens_per_s=20))
    job = started.job
    await _stop_worker_mid_reply(runtime, job)
    cancelled = await runtime.runs.cancel_run(job.workspace_id, job.thread_id, job.run_id)
    assert cancelled.status == "cancelling"
    runtime.workers.executor.cancels.clear(job.run_id)  # the signal died with its worker

    await runtime.workers.executor.execute(job)

    status, messages, steps = await _stored(runtime, job)
    assert status == "cancelled"
    assert [m.role for m in messages] == ["user"]  # the cut-off reply is not left behind
    assert steps == []
    assert len(fake_model.requests(started.model)) == 1  # the model was not asked again


async def _cancel_stands(runtime: Runtime, run_id: str) -> bool:
    """Whether a cancel of the run is requested and not yet forgotten."""
    try:
        await asyncio.wait_for(runtime.cancels.cancelled(run_id), 0.5)
    except TimeoutError:
        return False
    return True


async def test_a_cancel_asked_as_its_worker_lets_go_stands_for_the_next_one(
    runtime: Runtime, fake_model: FakeModel
) -> None:
    """A worker let go of a run (its lease lost, or stopping) leaves the run's cancel
    request alone: only the worker that ends the run is done with it."""
    started = await _start(runtime, fake_model, Reply(LONG, tokens_per_s=20))
    job = started.job
    holder = await _mid_reply(runtime, job)
    cancelled = await runtime.runs.cancel_run(job.workspace_id, job.thread_id, job.run_id)
    # The worker loses its lease that same moment: it lets go before it acts on the cancel.
    holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder
    assert cancelled.status == "cancelling"
    assert await _cancel_stands(runtime, job.run_id)

    await runtime.workers.executor.execute(job)  # the takeover

    status, messages, _ = await _stored(runtime, job)
    assert status == "cancelled" and [m.role for m in messages] == ["user"]
    assert not await _cancel_stands(runtime, job.run_id)  # the run ended: forgotten


async def _queued_job(runtime: Runtime) -> RunJob:
    """The job the run service queued last (no worker is started to take it)."""
    lease = await runtime.queue.claim("test", timeout_s=1)
    assert lease is not None
    return lease.job


async def _asked(fake_model: FakeModel, model: str, count: int) -> None:
    for _ in range(1500):
        if len(fake_model.requests(model)) >= count:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"the model was never asked {count} times")


async def test_a_stale_job_of_an_earlier_leg_is_let_go(
    runtime: Runtime, fake_model: FakeModel
) -> None:
    """The worker of a run's first leg died after the run came to wait for tool outputs,
    before acking its job. The outputs came, and a live worker runs the second leg; the
    first job, its lease lapsed, reaches another worker, which must let it go rather
    than take over the run the live worker holds."""
    answer = Gate("Sunny in Oslo.", timeout_s=60)
    model = fake_model.new_model(ToolCalls([("get_weather", {"city": "Oslo"})]), answer)
    workspace = await runtime.tenancy.create_workspace(f"legs-{model}")
    ws = workspace.id
    spec = AssistantSpec(model=model, tools=[WEATHER])
    assistant = await runtime.service.create_assistant(ws, spec)
    thread, run = await runtime.runs.create_thread_and_run(
        ws, [MessageSpec("Weather in Oslo?")], None, RunSpec(assistant.id)
    )
    first = await _queued_job(runtime)
    await runtime.workers.executor.execute(first)  # its worker dies before acking
    waiting = await runtime.runs.get_run(ws, thread.id, run.id)
    assert waiting.status == "requires_action" and waiting.required_action is not None
    [call] = waiting.required_action.tool_calls
    await runtime.runs.submit_tool_outputs(ws, thread.id, run.id, [ToolOutput("sunny", call.id)])
    second = await _queued_job(runtime)
    live = asyncio.create_task(runtime.workers.executor.execute(second))
    try:
        await _asked(fake_model, model, 2)  # the live worker waits for the model's answer
        await asyncio.wait_for(runtime.workers.executor.execute(first), 30)  # the stale job
        assert len(fake_model.requests(model)) == 2  # not asked again by the stale job
        status, _, steps = await _stored(runtime, second)
        assert status == "in_progress" and [s.type for s in steps] == ["tool_calls"]
    finally:
        answer.open()
    await asyncio.wait_for(live, 30)

    status, messages, steps = await _stored(runtime, second)
    assert status == "completed"
    assert [(m.role, m.status) for m in messages] == [
        ("user", "completed"),
        ("assistant", "completed"),
    ]
    assert messages[1].content[0]["text"]["value"] == "Sunny in Oslo."
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    assert len(fake_model.requests(model)) == 2
