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
from assistd.core.run_service import RunSpec
from assistd.core.service import AssistantSpec, MessageSpec
from assistd.queue.base import RunJob
from assistd.runtime import Runtime, build_runtime
from assistd.settings import Settings
from tests.support.fake_model import FakeModel, Reply

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
    holder = asyncio.create_task(runtime.workers.executor.execute(job))
    for _ in range(500):
        deltas = [e for e in await _events(runtime, job.run_id) if e.name.endswith("delta")]
        if len(deltas) >= 3:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the reply never started")
    holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder


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
