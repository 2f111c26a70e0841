"""The `rag` step is durable: a run whose server stopped after the search is taken over
from the recorded step, with the same documents in its prompt, even when the knowledge
base is gone by then. Searching again would fail the run (or change its prompt)."""

from __future__ import annotations

import json
import time

import pytest
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.api.openai.conftest import sdk
from tests.runs.conftest import sdk_at, workspace_key
from tests.runs.helpers import ok, wait_done, wait_for
from tests.runs.test_rag import CATS, INSTRUCTIONS, QUESTION, knowledge_base, rag_tool
from tests.support.fake_model import FakeModel, Hang, Reply
from tests.support.sdk import as_json
from tests.support.server import run_server


def _asked(fake_model: FakeModel, model: str) -> None:
    deadline = time.monotonic() + 60
    while not fake_model.requests(model):
        assert time.monotonic() < deadline, "the model was never asked"
        time.sleep(0.05)


def test_a_taken_over_run_reuses_its_recorded_search(
    database: str, tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> None:
    data_dir = tmp_path_factory.mktemp("rag-restart")
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url}
    model = fake_model.new_model(Hang(120), Reply("Fish [1]."))
    with run_server(data_dir, database, **env) as first:
        _, key = workspace_key(first)
        with sdk_at(first, key):
            store_id, files = knowledge_base(first, {"cats.txt": CATS})
            tool = rag_tool(store_id)
            assistant = ok(Assistants.create(model=model, instructions=INSTRUCTIONS, tools=[tool]))
            thread = ok(Threads.create(messages=[{"role": "user", "content": QUESTION}]))
            run = ok(Runs.create(thread.id, assistant_id=assistant.id))
            wait_for(thread.id, run.id, "in_progress")
            _asked(fake_model, model)  # searched and recorded: the model is being asked
            with sdk(first, key) as client:
                client.vector_stores.delete(store_id)

    with run_server(data_dir, database, **env) as second, sdk_at(second, key):
        done = wait_done(thread.id, run.id)
        assert done.status == "completed", as_json(done)
        first_ask, second_ask = fake_model.requests(model)
        assert first_ask["messages"][0] == second_ask["messages"][0]  # the same instructions
        assert f"[1] (cats.txt) {CATS}" in second_ask["messages"][0]["content"]
        steps = as_json(ok(Steps.list(run.id, thread_id=thread.id, order="asc")))["data"]
        assert [s["type"] for s in steps] == ["tool_calls", "message_creation"]
        [doc] = json.loads(steps[0]["step_details"]["tool_calls"][0]["rag"]["output"])
        assert doc["doc_id"] == files["cats.txt"]
        [reply] = ok(Messages.list(thread.id, order="desc", limit=1)).data
        assert reply.content[0].text.annotations[0]["file_citation"]["file_id"] == doc["doc_id"]
