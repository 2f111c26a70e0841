"""A server that stops while runs are going leaves none of them stuck: on the next start a
run that was in progress is taken over and completes, a queued run is run, and a run
waiting for tool outputs still takes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.conftest import sdk_at, workspace_key
from tests.runs.helpers import WEATHER, ok, settle, wait_done, wait_for
from tests.support.fake_model import FakeModel, Hang, Reply, ToolCalls
from tests.support.sdk import as_json
from tests.support.server import run_server


def test_runs_survive_a_restart(
    database: str, tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> None:
    data_dir: Path = tmp_path_factory.mktemp("restart")
    # One worker, so that a second run stays queued behind the hanging one.
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url, "ASSISTD_RUN_WORKERS": "1"}
    hanging = fake_model.new_model(Hang(120), Reply("taken over"))
    quick = fake_model.new_model(Reply("after the restart"))
    tool = fake_model.new_model(ToolCalls([("get_weather", {"city": "Riga"})]), Reply("Windy."))

    with run_server(data_dir, database, **env) as first:
        _, key = workspace_key(first)
        with sdk_at(first, key):
            waiting_thread = ok(Threads.create(messages=[{"role": "user", "content": "w?"}]))
            asst_tool = ok(Assistants.create(model=tool, tools=[WEATHER]))
            waiting = ok(Runs.create(waiting_thread.id, assistant_id=asst_tool.id))
            assert settle(waiting_thread.id, waiting.id).status == "requires_action"

            busy_thread = ok(Threads.create(messages=[{"role": "user", "content": "hang"}]))
            busy = ok(
                Runs.create(busy_thread.id, assistant_id=ok(Assistants.create(model=hanging)).id)
            )
            wait_for(busy_thread.id, busy.id, "in_progress")

            queued_thread = ok(Threads.create(messages=[{"role": "user", "content": "later"}]))
            asst_quick = ok(Assistants.create(model=quick))
            queued = ok(Runs.create(queued_thread.id, assistant_id=asst_quick.id))
            assert ok(Runs.retrieve(queued.id, thread_id=queued_thread.id)).status == "queued"

    with run_server(data_dir, database, **env) as second, sdk_at(second, key):
        stopped = wait_done(busy_thread.id, busy.id)
        assert stopped.status == "completed", as_json(stopped)
        replies = ok(Messages.list(busy_thread.id)).data
        assert [m.role for m in replies] == ["assistant", "user"]
        assert replies[0].content[0].text.value == "taken over"
        resumed = wait_done(queued_thread.id, queued.id)
        assert resumed.status == "completed", as_json(resumed)
        still = ok(Runs.retrieve(waiting.id, thread_id=waiting_thread.id))
        assert still.status == "requires_action"
        ok(
            Runs.submit_tool_outputs(
                waiting.id, thread_id=waiting_thread.id, tool_outputs=[{"output": "9 m/s"}]
            )
        )
        assert wait_done(waiting_thread.id, waiting.id).status == "completed"
