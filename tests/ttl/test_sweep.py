"""The worker's sweep deletes exactly the threads idle past their time-to-live, with their
messages, runs and steps and the files nothing else uses; threads with an active run,
recent threads and shared files stay. TTLs from the server, the workspace and the thread."""

from __future__ import annotations

import httpx
import openai
import pytest
from dashscope import Threads

from tests.api.openai.conftest import sdk
from tests.conftest import make_workspace
from tests.runs.conftest import StartServer, sdk_at
from tests.runs.helpers import WEATHER, ok
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer
from tests.ttl.conftest import HOUR_MS, count_of, exists, idle_for, wait_gone


@pytest.fixture(scope="module")
def swept(start_module_server: StartServer, fake_model: FakeModel) -> RunningServer:
    """A server whose worker sweeps every half second; threads live an hour by default."""
    return start_module_server(
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
        ASSISTD_THREAD_TTL_S="3600",
        ASSISTD_THREAD_SWEEP_INTERVAL_S="0.5",
    )


def _admin(server: RunningServer) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=30)


def _upload(client: openai.OpenAI, name: str) -> str:
    return client.files.create(file=(name, b"ttl test\n"), purpose="assistants").id


def _thread_with(client: openai.OpenAI, *file_ids: str) -> str:
    # code_interpreter: a file_search attachment puts the file in the thread's vector
    # store, which outlives the thread (as OpenAI's did, until the store expires).
    attachments = [{"file_id": f, "tools": [{"type": "code_interpreter"}]} for f in file_ids]
    message = {"role": "user", "content": "hello", "attachments": attachments}
    return client.beta.threads.create(messages=[message]).id  # type: ignore[list-item]


def test_idle_threads_go_with_their_own_files(swept: RunningServer, fake_model: FakeModel) -> None:
    with _admin(swept) as admin:
        _, key = make_workspace(admin, "ttl")
    with sdk(swept, key) as client:
        own, shared, kept_by_assistant = (_upload(client, n) for n in ("a.txt", "b.txt", "c.txt"))
        model = fake_model.new_model(Reply("done"), ToolCalls([("get_weather", {"city": "Oslo"})]))
        assistant = client.beta.assistants.create(
            model=model, tools=[{"type": "code_interpreter"}],
            tool_resources={"code_interpreter": {"file_ids": [kept_by_assistant]}},
        )  # fmt: skip
        idle = _thread_with(client, own, shared, kept_by_assistant)
        run = client.beta.threads.runs.create_and_poll(thread_id=idle, assistant_id=assistant.id)
        assert run.status == "completed"
        recent = _thread_with(client, shared)
        busy = client.beta.threads.create().id
        weather = client.beta.assistants.create(model=model, tools=[WEATHER])  # type: ignore[list-item]
        waiting = client.beta.threads.runs.create_and_poll(thread_id=busy, assistant_id=weather.id)
        assert waiting.status == "requires_action"

        idle_for(swept, busy, 2 * HOUR_MS)  # first: once `idle` is gone, a sweep saw both
        idle_for(swept, idle, 2 * HOUR_MS)
        wait_gone(swept, idle)

        assert count_of(swept, "messages", idle) == 0 and count_of(swept, "runs", idle) == 0
        assert count_of(swept, "run_steps", idle) == 0
        assert not exists(swept, "files", own)
        assert exists(swept, "files", shared) and exists(swept, "files", kept_by_assistant)
        assert exists(swept, "threads", recent) and exists(swept, "threads", busy)
        with pytest.raises(openai.NotFoundError):
            client.beta.threads.retrieve(idle)
        assert client.beta.threads.runs.retrieve(waiting.id, thread_id=busy).status == (
            "requires_action"
        )


def test_thread_and_workspace_ttls(swept: RunningServer) -> None:
    """Workspace `never` (0) with a thread asking for a minute; a workspace of a day with
    threads asking for never and an hour. A thread asking for less goes first; the
    sentinels' going shows a sweep looked at the rest."""
    with _admin(swept) as admin:
        never_ws, never_key = make_workspace(admin, "ttl-never")
        day_ws, day_key = make_workspace(admin, "ttl-day")
        for ws, ttl in ((never_ws, 0), (day_ws, 86400)):
            answer = admin.post(
                f"/admin/v1/workspaces/{ws}/settings", json={"thread_ttl_seconds": ttl}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["thread_ttl_seconds"] == ttl
        got = admin.get(f"/admin/v1/workspaces/{day_ws}/settings").json()
        assert got["thread_ttl_seconds"] == 86400 and got["server_thread_ttl_seconds"] == 3600

    def made(key: str, metadata: dict[str, str]) -> str:
        with sdk_at(swept, key):
            return str(ok(Threads.create(metadata=metadata)).id)

    inherits_never = made(never_key, {})
    minute = made(never_key, {"expires_after_seconds": "60"})
    within_day = made(day_key, {})
    past_day = made(day_key, {})
    forever = made(day_key, {"expires_after_seconds": "0"})
    hour = made(day_key, {"expires_after_seconds": "3600"})
    with sdk_at(swept, day_key):  # set by a modify: the hour becomes a week
        week = made(day_key, {})
        ok(Threads.update(week, metadata={"expires_after_seconds": str(7 * 86400)}))

    for thread_id in (inherits_never, within_day, forever, week):
        idle_for(swept, thread_id, 2 * 86400 * 1000 if thread_id != within_day else 2 * HOUR_MS)
    for thread_id in (minute, hour, past_day):
        idle_for(swept, thread_id, 2 * 86400 * 1000)
    for thread_id in (minute, hour, past_day):
        wait_gone(swept, thread_id)
    for thread_id in (inherits_never, within_day, forever, week):
        assert exists(swept, "threads", thread_id), thread_id
