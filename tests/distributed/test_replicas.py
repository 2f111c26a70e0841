"""The dashscope SDK's whole flow on the distributed shape: two `assistd serve
--no-worker` replicas and two `assistd worker` processes on PostgreSQL and Redis, each
call going to whichever replica the test picks, as a load balancer would."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import pytest
from dashscope import Assistants, Messages, Runs, Threads

from tests.distributed.conftest import Cluster
from tests.runs.conftest import sdk_at, workspace_key
from tests.runs.helpers import WEATHER, collect, delta_text, names, ok, settle, wait_for
from tests.support.fake_model import FakeModel, Gate, Reply, ToolCalls
from tests.support.redis import redis_or_skip
from tests.support.sdk import as_json

LONG = " ".join(f"w{i}" for i in range(200))


def test_the_whole_flow_across_replicas(cluster: Cluster, fake_model: FakeModel) -> None:
    (a, b), workers = cluster.start(replicas=2, workers=2)
    _, key = workspace_key(a)
    model = fake_model.new_model(
        Reply("Hello from the cluster."),
        ToolCalls([("get_weather", {"city": "Paris"})]),
        Reply("Sunny in Paris."),
        Reply(LONG, tokens_per_s=20),
    )
    with sdk_at(a, key):
        assistant = ok(Assistants.create(model=model, tools=[WEATHER]))

    # A thread and a streamed run on B, read back on A.
    with sdk_at(b, key):
        thread_id = ok(Threads.create(messages=[{"role": "user", "content": "Hi"}])).id
        events = collect(Runs.create(thread_id, assistant_id=assistant.id, stream=True))
    assert names(events)[-1] == "thread.run.completed", names(events)
    assert delta_text(events) == "Hello from the cluster."
    run_id = events[0][1].id
    with sdk_at(a, key):
        assert ok(Runs.retrieve(run_id, thread_id=thread_id)).status == "completed"
        reply = ok(Messages.list(thread_id)).data[0]
    assert reply.content[0].text.value == "Hello from the cluster."

    # A function call: requires_action seen on A, the outputs submitted (streamed) on B.
    with sdk_at(a, key):
        ok(Messages.create(thread_id, content="Weather in Paris?"))
        run = ok(Runs.create(thread_id, assistant_id=assistant.id))
        waiting = settle(thread_id, run.id)
    assert waiting.status == "requires_action", as_json(waiting)
    [call] = waiting.required_action.submit_tool_outputs.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    with sdk_at(b, key):
        outputs = [{"tool_call_id": call.id, "output": "sunny"}]
        leg = collect(
            Runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=outputs, stream=True)
        )
    assert names(leg)[-1] == "thread.run.completed", names(leg)
    assert delta_text(leg) == "Sunny in Paris."
    with sdk_at(a, key):
        assert ok(Runs.retrieve(run.id, thread_id=thread_id)).status == "completed"

    # A cancel on B reaches the worker running the run that A streams.
    with sdk_at(a, key):
        ok(Messages.create(thread_id, content="Take your time."))
        stream = iter(Runs.create(thread_id, assistant_id=assistant.id, stream=True))
        seen = []
        for name, data in stream:
            seen.append((name, data))
            if name == "thread.message.delta":
                with sdk_at(b, key):
                    ok(Runs.cancel(seen[0][1].id, thread_id=thread_id))
                break
        seen.extend(collect(stream))
    assert names(seen)[-1] == "thread.run.cancelled", names(seen)
    assert "thread.message.incomplete" in names(seen)
    assert len(delta_text(seen)) < len(LONG)
    with sdk_at(b, key):
        assert ok(Runs.retrieve(seen[0][1].id, thread_id=thread_id)).status == "cancelled"

    # SIGTERM stops a worker cleanly.
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=15) == 0, worker.log.read_text()


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_workers_run_is_taken_over_when_it_dies_or_stops(
    cluster: Cluster, fake_model: FakeModel, stop: signal.Signals
) -> None:
    """SIGKILL: the worker vanishes holding the run. SIGTERM: it stops cleanly, letting go
    of the run without ending it. Either way the other worker resumes it."""
    [api], workers = cluster.start(replicas=1, workers=2)
    _, key = workspace_key(api)
    stalled = Gate("never sent", timeout_s=60)
    model = fake_model.new_model(stalled, Reply("Answered after the takeover."))
    try:
        with sdk_at(api, key):
            assistant = ok(Assistants.create(model=model))
            thread_id = ok(Threads.create(messages=[{"role": "user", "content": "Hi"}])).id
            run = ok(Runs.create(thread_id, assistant_id=assistant.id))
            wait_for(thread_id, run.id, "in_progress")
            _wait_requests(fake_model, model, 1)  # its worker waits on the stalled model
            [holder] = [w for w in workers if w.process.pid == _holder_pid(cluster)]
            holder.process.send_signal(stop)
            code = holder.process.wait(timeout=15)
            assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL), code
            # The other worker takes the run over once its lease (2 s) lapses.
            done = settle(thread_id, run.id, timeout_s=30)
            assert done.status == "completed", as_json(done)
            reply = ok(Messages.list(thread_id)).data
            assert [m.role for m in reply] == ["assistant", "user"]
            assert reply[0].content[0].text.value == "Answered after the takeover."
        [other] = [w for w in workers if w is not holder]
        other.process.send_signal(signal.SIGTERM)
        assert other.process.wait(timeout=15) == 0
    finally:
        stalled.open()  # frees the fake model's thread


def _holder_pid(cluster: Cluster) -> int:
    """The PID of the worker holding the one leased job (consumer ids name it)."""

    async def pending() -> Any:
        client = await redis_or_skip()
        try:
            stream = f"{cluster.env['ASSISTD_REDIS_PREFIX']}runs"
            return await client.xpending_range(stream, "workers", "-", "+", 10)
        finally:
            await client.aclose()

    [entry] = asyncio.run(pending())
    return int(str(entry["consumer"]).split(":")[1])


def _wait_requests(fake_model: FakeModel, model: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(fake_model.requests(model)) < count:
        assert time.monotonic() < deadline, "the model was never asked"
        time.sleep(0.05)
