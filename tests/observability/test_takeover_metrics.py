"""A run taken over after its server was killed (SIGKILL) is counted as a lease takeover
by the server that takes it over, and ends counted as completed there."""

from __future__ import annotations

import time

import pytest
from dashscope import Assistants, Messages, Runs, Threads

from tests.observability.helpers import scrape, value
from tests.runs.conftest import sdk_at, workspace_key
from tests.runs.helpers import ok, wait_done
from tests.support.fake_model import FakeModel, Reply
from tests.support.server import run_server

LONG = " ".join(f"word{i}" for i in range(400))


def test_a_run_taken_over_after_a_kill_is_counted(
    database: str, tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> None:
    data_dir = tmp_path_factory.mktemp("takeover-metrics")
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url}
    model = fake_model.new_model(Reply(LONG, tokens_per_s=20), Reply("The whole answer."))
    with run_server(data_dir, database, **env) as first:
        _, key = workspace_key(first)
        with sdk_at(first, key):
            thread = ok(Threads.create(messages=[{"role": "user", "content": "Tell me."}]))
            run = ok(Runs.create(thread.id, assistant_id=ok(Assistants.create(model=model)).id))
            deadline = time.monotonic() + 30
            while not [m for m in ok(Messages.list(thread.id)).data if m.role == "assistant"]:
                assert time.monotonic() < deadline, "the reply never started"
                time.sleep(0.05)
        assert value(scrape(first), "assistd_lease_takeovers_total") == 0
        assert first.process is not None
        first.process.kill()  # SIGKILL: the run is left in progress
        first.process.wait()

    with run_server(data_dir, database, **env) as second, sdk_at(second, key):
        assert wait_done(thread.id, run.id).status == "completed"
        after = scrape(second)
    assert value(after, "assistd_lease_takeovers_total") == 1
    assert value(after, "assistd_runs_total", status="completed") == 1
    assert value(after, "assistd_runs_total", status="queued") == 0  # taken over, not queued
