"""Resumable streams (an assistd extension): `id:<seq>` lines only for a client that asks,
and `GET .../runs/{run_id}/events` to follow a run again from the last event it saw, with
nothing missed and nothing twice, ending where the leg ends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import Assistants, Runs, Threads

from tests.conftest import make_workspace
from tests.runs.conftest import dedicated_server, sdk_on
from tests.runs.helpers import BIG_ADD, collect, delta_text, names, ok, settle, wait_done
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer

IDS = {"X-Assistd-Event-Ids": "true"}
SLOW = " ".join(f"word{i}" for i in range(40))


@dataclass(frozen=True)
class Frame:
    id: str | None
    event: str
    data: str


def frames_of(lines: list[str]) -> list[Frame]:
    """The frames of an SSE body: each `data:` line with the `id:`/`event:` lines before it."""
    found: list[Frame] = []
    current_id: str | None = None
    event = ""
    for line in lines:
        if line.startswith("id:"):
            current_id = line[3:]
        elif line.startswith("event:"):
            event = line[6:]
        elif line.startswith("data:"):
            found.append(Frame(current_id, event, line[5:]))
            current_id = None
    return found


def events_of(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.event != "done"]


@dataclass
class Client:
    server: RunningServer
    key: str

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.server.dashscope_url, headers=headers, timeout=60)

    def read_part(
        self, path: str, body: dict[str, Any], deltas: int, headers: dict[str, str]
    ) -> list[Frame]:
        """Streams a POST until `deltas` message deltas came, then drops the connection."""
        lines: list[str] = []
        with self.http() as client, client.stream("POST", path, json=body, headers=headers) as r:
            assert r.status_code == 200, r.read()
            for line in r.iter_lines():
                lines.append(line)
                if (
                    line.startswith("data:")
                    and sum(f.event == "thread.message.delta" for f in frames_of(lines)) >= deltas
                ):
                    break
        return frames_of(lines)

    def follow(
        self, thread_id: str, run_id: str, params: dict[str, str] | None = None, **headers: str
    ) -> httpx.Response:
        """GET .../events, read to its end."""
        with self.http() as client:
            url = f"/threads/{thread_id}/runs/{run_id}/events"
            return client.get(url, params=params, headers=headers)


@pytest.fixture
def client(ds: str, server: RunningServer) -> Client:
    return Client(server, str(dashscope.api_key))


def _slow_run(fake_model: FakeModel, text: str = SLOW) -> tuple[str, str]:
    """An assistant whose model answers `text` slowly, and a thread: (assistant, thread)."""
    model = fake_model.new_model(Reply(text, tokens_per_s=40))
    assistant = ok(Assistants.create(model=model, instructions="Be slow."))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Talk."}]))
    return assistant.id, thread.id


def _body_lines(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return response.text.splitlines()


def _check_whole(frames: list[Frame]) -> None:
    """One leg of a run, told from its start to its end, each event once, ids rising."""
    assert frames[-1] == Frame(None, "done", "[DONE]")
    events = events_of(frames)
    assert events[0].event == "thread.run.created" and events[-1].event == "thread.run.completed"
    seqs = [int(str(f.id)) for f in events]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    text = "".join(
        json.loads(f.data)["delta"]["content"][0]["text"]["value"]
        for f in events
        if f.event == "thread.message.delta"
    )
    assert text == SLOW


def test_a_stream_resumed_with_last_event_id_misses_and_repeats_nothing(
    client: Client, fake_model: FakeModel
) -> None:
    assistant_id, thread_id = _slow_run(fake_model)
    body = {"assistant_id": assistant_id, "stream": True}
    part = client.read_part(f"/threads/{thread_id}/runs", body, 3, IDS)
    events = events_of(part)
    assert "thread.run.completed" not in [f.event for f in events]  # cut off mid-stream
    assert all(f.id is not None for f in events)
    run_id = json.loads(events[0].data)["id"]

    resumed = client.follow(thread_id, run_id, **{"Last-Event-ID": str(events[-1].id)})
    rest = frames_of(_body_lines(resumed))
    assert rest[-2].event == "thread.run.completed"  # ends as the original stream would
    whole = frames_of(_body_lines(client.follow(thread_id, run_id, {"after": "0"}, **IDS)))
    _check_whole(whole)
    assert events + rest == whole
    assert wait_done(thread_id, run_id).status == "completed"


def test_a_stream_resumed_with_the_after_parameter(client: Client, fake_model: FakeModel) -> None:
    assistant_id, thread_id = _slow_run(fake_model)
    body = {"assistant_id": assistant_id, "stream": True}
    part = events_of(client.read_part(f"/threads/{thread_id}/runs?event_ids=true", body, 1, {}))
    run_id = json.loads(part[0].data)["id"]
    after = {"after": str(part[-1].id), "event_ids": "true"}
    rest = frames_of(_body_lines(client.follow(thread_id, run_id, after)))
    _check_whole(part + rest)
    # Without asking for ids, the same events without id: lines.
    plain = frames_of(_body_lines(client.follow(thread_id, run_id, {"after": str(part[-1].id)})))
    assert plain == [Frame(None, f.event, f.data) for f in rest]


def test_thread_and_run_stream_gives_thread_created_event_zero(
    client: Client, fake_model: FakeModel
) -> None:
    assistant_id, _ = _slow_run(fake_model)
    body = {"assistant_id": assistant_id, "stream": True}
    part = events_of(client.read_part("/threads/runs", body, 2, IDS))
    assert (part[0].id, part[0].event) == ("0", "thread.created")
    thread_id = json.loads(part[0].data)["id"]
    run_id = json.loads(part[1].data)["id"]
    # A client cut off before its first bus event resumes from 0: everything but thread.created.
    rest = frames_of(_body_lines(client.follow(thread_id, run_id, **{"Last-Event-ID": "0"})))
    assert events_of(rest)[: len(part) - 1] == part[1:]
    _check_whole(rest)


def test_default_streams_have_no_id_lines_and_the_sdk_reads_either(
    client: Client, fake_model: FakeModel
) -> None:
    assistant_id, thread_id = _slow_run(fake_model, "plain words here")
    with client.http() as http:
        raw = http.post(
            f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}
        )
    lines = _body_lines(raw)
    assert not [line for line in lines if line.startswith("id")], lines
    assert frames_of(lines)[-2].event == "thread.run.completed"

    model = fake_model.new_model(Reply("with ids on"))
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hi"}]))
    stream = Runs.create(thread.id, assistant_id=assistant.id, stream=True, headers=IDS)
    events = collect(stream)
    assert names(events)[-1] == "thread.run.completed" and delta_text(events) == "with ids on"


def test_resuming_at_the_end_of_a_leg(client: Client, fake_model: FakeModel) -> None:
    """After the event that ends a leg there is nothing to send until the run goes on;
    then the next leg follows, and after the run's last event, nothing ever."""
    model = fake_model.new_model(ToolCalls([("big_add", {"left": 1, "right": 2})]), Reply("3"))
    assistant = ok(Assistants.create(model=model, tools=[BIG_ADD]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "1+2?"}]))
    with client.http() as http:
        body = {"assistant_id": assistant.id, "stream": True}
        leg1 = events_of(
            frames_of(
                _body_lines(http.post(f"/threads/{thread.id}/runs?event_ids=true", json=body))
            )
        )
    assert leg1[-1].event == "thread.run.requires_action"
    run = json.loads(leg1[-1].data)
    asked = str(leg1[-1].id)
    waiting = frames_of(_body_lines(client.follow(thread.id, run["id"], {"after": asked})))
    assert waiting == [Frame(None, "done", "[DONE]")]

    call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    outputs = [{"tool_call_id": call["id"], "output": "3"}]
    ok(Runs.submit_tool_outputs(run["id"], thread_id=thread.id, tool_outputs=outputs))
    assert settle(thread.id, run["id"]).status == "completed"
    leg2 = events_of(
        frames_of(_body_lines(client.follow(thread.id, run["id"], **{"Last-Event-ID": asked})))
    )
    assert leg2[-1].event == "thread.run.completed"
    assert int(str(leg2[0].id)) == int(asked) + 1
    assert "thread.run.created" not in [f.event for f in leg2]
    over = client.follow(thread.id, run["id"], {"after": str(leg2[-1].id)})
    assert frames_of(_body_lines(over)) == [Frame(None, "done", "[DONE]")]


def test_resume_answers_bad_input_and_others_runs_with_4xx(
    client: Client, admin: httpx.Client, fake_model: FakeModel
) -> None:
    assistant_id, thread_id = _slow_run(fake_model, "short")
    run = ok(Runs.create(thread_id, assistant_id=assistant_id))
    last = len(events_of(frames_of(_body_lines(client.follow(thread_id, run.id)))))
    wait_done(thread_id, run.id)

    for params, headers, named in (
        ({"after": "x"}, {}, "'after'"),
        ({"after": "-1"}, {}, "'after'"),
        ({"after": "9" * 5000}, {}, "'after'"),
        ({}, {"Last-Event-ID": "12abc"}, "'Last-Event-ID'"),
        ({"after": "0", "event_ids": "maybe"}, {}, "'event_ids'"),
        ({"after": str(last + 100)}, {}, f"latest is {last}"),
    ):
        answer = client.follow(thread_id, run.id, params, **headers)
        assert answer.status_code == 400, (params, headers, answer.text)
        assert answer.json()["code"] == "InvalidParameter" and named in answer.json()["message"]

    body = {"assistant_id": assistant_id, "stream": True}
    with client.http() as http:
        refused = http.post(
            f"/threads/{thread_id}/runs", json=body, headers={"X-Assistd-Event-Ids": "yes please"}
        )
    assert refused.status_code == 400 and "'X-Assistd-Event-Ids'" in refused.json()["message"]
    assert [r.id for r in ok(Runs.list(thread_id)).data] == [run.id]  # refused before the run

    _, other_key = make_workspace(admin)
    other = Client(client.server, other_key)
    for thread, run_id in ((thread_id, run.id), (thread_id, "run_nope")):
        answer = other.follow(thread, run_id, {"after": "0"})
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "NotFound"
    assert client.follow(thread_id, "run_nope").status_code == 404


@pytest.fixture(scope="module")
def forgetful(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    """A server that keeps a run's events 1 s after it ends."""
    workdir: Path = tmp_path_factory.mktemp("forgetful")
    env = {"ASSISTD_EVENT_RETENTION_S": "1", "ASSISTD_OPENAI_BASE_URL": fake_model.base_url}
    with dedicated_server("sqlite", workdir, **env) as server:
        yield server


def test_a_run_whose_events_are_gone_is_a_410(
    forgetful: RunningServer, fake_model: FakeModel
) -> None:
    with sdk_on(forgetful):
        assistant_id, thread_id = _slow_run(fake_model, "soon forgotten")
        run = ok(Runs.create(thread_id, assistant_id=assistant_id))
        wait_done(thread_id, run.id)
        client = Client(forgetful, str(dashscope.api_key))
        time.sleep(1.5)  # past the retention
        answer = client.follow(thread_id, run.id, {"after": "2"})
    assert answer.status_code == 410, answer.text
    assert answer.json()["code"] == "Gone"
    assert "retrieve the run" in answer.json()["message"]
