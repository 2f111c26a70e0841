"""Streamed runs: the exact event order the SDK yields, the raw SSE bytes behind it, and a
client that goes away mid-stream while the run goes on."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import dashscope
import httpx
from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.conftest import StartServer, sdk_on
from tests.runs.helpers import (
    RawStream,
    collect,
    delta_text,
    names,
    ok,
    raw_stream,
    wait_done,
    wait_for,
)
from tests.support.fake_model import FakeModel, Hang, Reply
from tests.support.server import RunningServer

ANSWER = "A ragdoll is a large, calm cat with blue eyes."
WORDS = len(ANSWER.split(" "))


def _assistant(model: str) -> str:
    return str(ok(Assistants.create(model=model, instructions="Be brief.")).id)


def test_streamed_run_event_order(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply(ANSWER))
    assistant_id = _assistant(model)
    thread = ok(Threads.create(messages=[{"role": "user", "content": "What is a ragdoll?"}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant_id, stream=True))

    expected = [
        "thread.run.created", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress",
        "thread.message.created", "thread.message.in_progress",
        *["thread.message.delta"] * WORDS,
        "thread.message.completed", "thread.run.step.completed", "thread.run.completed",
    ]  # fmt: skip
    assert names(events) == expected
    assert "done" not in names(events) and None not in names(events)

    run_events = [
        data for name, data in events if name.startswith("thread.run.") and "step" not in name
    ]
    run_id = run_events[0].id
    assert {r.id for r in run_events} == {run_id}
    assert [r.status for r in run_events] == ["queued", "queued", "in_progress", "completed"]
    assert all(r.object == "thread.run" and r.thread_id == thread.id for r in run_events)

    step = events[3][1]
    message = events[5][1]
    assert step.type == "message_creation" and step.status == "in_progress"
    assert step.step_details.message_creation.message_id == message.id
    assert message.role == "assistant" and message.status == "in_progress"
    assert message.content == [] and message.run_id == run_id

    deltas = [data for name, data in events if name == "thread.message.delta"]
    assert all(d.id == message.id and d.delta.role == "assistant" for d in deltas)
    assert delta_text(events) == ANSWER
    completed = events[-3][1]
    assert completed.id == message.id and completed.status == "completed"
    assert completed.content[0].text.value == ANSWER
    assert events[-2][1].status == "completed" and events[-2][1].usage.completion_tokens == WORDS

    listed = ok(Messages.list(thread.id)).data[0]
    assert (listed.id, listed.content[0].text.value) == (message.id, ANSWER)
    assert ok(Runs.retrieve(run_id, thread_id=thread.id)).status == "completed"


def test_raw_sse_framing(ds: str, server: RunningServer, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply(ANSWER))
    assistant_id = _assistant(model)
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Describe a ragdoll."}]))
    raw = raw_stream(
        server, f"/threads/{thread.id}/runs", {"assistant_id": assistant_id, "stream": True}
    )
    assert raw.status == 200
    assert raw.content_type.startswith("text/event-stream")

    for line in raw.lines:
        # Only these line kinds, with no space after the colon; comments are heartbeats.
        assert line == "" or line.startswith(("event:", "data:", ":")), line
        assert not line.startswith(("event: ", "data: ")), line
    frames = raw.frames()
    assert (frames[-1].event, frames[-1].data) == ("done", "[DONE]")
    # The body ends with the done frame, written with no space after the colons.
    assert [line for line in raw.lines if line][-2:] == ["event:done", "data:[DONE]"]

    for f in frames[:-1]:
        data = json.loads(f.data)  # one line of JSON per data: line
        assert isinstance(data, dict) and "object" in data, f
    # No id: lines unless the client asks for them (they break the openai SDK's decoder).
    assert not any(line.startswith("id:") for line in raw.lines)

    events = raw.events()
    assert events[0][0] == "thread.run.created" and events[-1][0] == "thread.run.completed"
    parts = [e[1]["delta"]["content"] for e in events if e[0] == "thread.message.delta"]
    assert all(len(p) == 1 and p[0]["type"] == "text" for p in parts)  # one part per delta
    assert "".join(p[0]["text"]["value"] for p in parts) == ANSWER


def test_client_disconnect_mid_stream_run_still_completes(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    slow = " ".join(f"word{i}" for i in range(30))
    model = fake_model.new_model(Reply(slow, tokens_per_s=30))
    assistant_id = _assistant(model)
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Talk slowly."}]))
    headers = {"Authorization": f"Bearer {dashscope.api_key}"}
    seen: list[str] = []
    run_id = ""
    with (
        httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30) as client,
        client.stream(
            "POST",
            f"/threads/{thread.id}/runs",
            json={"assistant_id": assistant_id, "stream": True},
        ) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                seen.append(line[6:])
            if line.startswith("data:{") and not run_id:
                run_id = json.loads(line[5:])["id"]
            if seen.count("thread.message.delta") >= 2:
                break  # leaves the stream: the connection is closed unread
    assert run_id.startswith("run_") and "thread.run.completed" not in seen

    done = wait_done(thread.id, run_id)
    assert done.status == "completed"
    answer = ok(Messages.list(thread.id)).data[0]
    assert answer.content[0].text.value == slow


def test_stream_of_a_run_that_is_already_going(ds: str, fake_model: FakeModel) -> None:
    """Two clients: one polls while the other streams; both see the same ending."""
    model = fake_model.new_model(Reply("short answer", tokens_per_s=20))
    assistant_id = _assistant(model)
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hi"}]))
    stream = Runs.create(thread.id, assistant_id=assistant_id, stream=True)
    first = next(iter(stream))
    assert first[0] == "thread.run.created"
    running = wait_for(thread.id, first[1].id, "in_progress", "completed")
    assert running.status in ("in_progress", "completed")
    rest = collect(stream)
    assert names(rest)[-1] == "thread.run.completed"
    assert delta_text(rest) == "short answer"
    assert wait_done(thread.id, first[1].id).status == "completed"


def test_quiet_streams_get_keep_alive_comments(
    start_server: StartServer, fake_model: FakeModel
) -> None:
    server = start_server(
        ASSISTD_SSE_HEARTBEAT_S="0.2", ASSISTD_OPENAI_BASE_URL=fake_model.base_url
    )
    with sdk_on(server):
        model = fake_model.new_model(Hang(1.5), Hang(1.5))
        assistant_id = _assistant(model)
        thread = ok(Threads.create(messages=[{"role": "user", "content": "hm?"}]))
        raw = raw_stream(
            server, f"/threads/{thread.id}/runs", {"assistant_id": assistant_id, "stream": True}
        )
        comments = [line for line in raw.lines if line.startswith(":")]
        assert comments, raw.lines  # the model was silent for 1.5 s
        assert names_of(raw)[-1] == "thread.run.completed"
        # The SDK skips the comments.
        ok(Messages.create(thread.id, content="again"))
        events = collect(Runs.create(thread.id, assistant_id=assistant_id, stream=True))
        assert names(events)[-1] == "thread.run.completed" and delta_text(events) == "late"


def names_of(raw: RawStream) -> list[str]:
    return [name for name, _ in raw.events()]


def test_concurrent_streamed_runs_do_not_mix(ds: str, fake_model: FakeModel) -> None:
    count = 8
    jobs = []
    for i in range(count):
        text = " ".join(f"run{i}-word{j}" for j in range(12))
        model = fake_model.new_model(Reply(text, tokens_per_s=100))
        assistant_id = _assistant(model)
        thread = ok(Threads.create(messages=[{"role": "user", "content": f"q{i}"}]))
        jobs.append((thread.id, assistant_id, text))

    def one(job: tuple[str, str, str]) -> tuple[list[str], str, str]:
        thread_id, assistant_id, _ = job
        events = collect(Runs.create(thread_id, assistant_id=assistant_id, stream=True))
        return names(events), delta_text(events), events[0][1].id

    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(one, jobs))
    for (thread_id, _, text), (seen, streamed, run_id) in zip(jobs, results, strict=True):
        assert seen[-1] == "thread.run.completed", seen
        assert streamed == text
        assert ok(Messages.list(thread_id)).data[0].content[0].text.value == text
        assert ok(Runs.retrieve(run_id, thread_id=thread_id)).status == "completed"


def test_deleting_the_thread_ends_its_stream(
    start_server: StartServer, fake_model: FakeModel
) -> None:
    server = start_server(
        ASSISTD_SSE_HEARTBEAT_S="0.3", ASSISTD_OPENAI_BASE_URL=fake_model.base_url
    )
    with sdk_on(server):
        text = " ".join(f"w{i}" for i in range(40))
        assistant_id = _assistant(fake_model.new_model(Reply(text, tokens_per_s=20)))
        thread = ok(Threads.create(messages=[{"role": "user", "content": "go on"}]))
        headers = {"Authorization": f"Bearer {dashscope.api_key}"}
        body = {"assistant_id": assistant_id, "stream": True}
        ended = False
        deadline = None
        with (
            httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30) as client,
            client.stream("POST", f"/threads/{thread.id}/runs", json=body) as response,
        ):
            for line in response.iter_lines():
                if line == "event:thread.message.delta" and deadline is None:
                    assert ok(Threads.delete(thread.id)).deleted is True
                    deadline = time.monotonic() + 10
                if deadline is not None and time.monotonic() > deadline:
                    break  # heartbeats (every 0.3 s) bring us here if the stream never ends
            else:
                ended = True
        assert ended, "the stream was still open 10 s after its thread was deleted"


def test_non_ascii_text_streams_intact(ds: str, fake_model: FakeModel) -> None:
    text = "一只 布偶猫 🐱 très calme, 눈이 파랗다."
    model = fake_model.new_model(Reply(text))
    assistant_id = _assistant(model)
    thread = ok(Threads.create(messages=[{"role": "user", "content": "画一只布偶猫"}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant_id, stream=True))
    assert delta_text(events) == text
    assert ok(Messages.list(thread.id)).data[0].content[0].text.value == text
    assert fake_model.requests(model)[0]["messages"][-1]["content"] == "画一只布偶猫"
