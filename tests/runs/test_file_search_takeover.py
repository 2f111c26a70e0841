"""A file_search run whose server stops after the search: the next server takes the run
over from what was committed. The search is not run again; its results, recorded with
the step, are what the step shows and what the reply's citation resolves against."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.openai.conftest import sdk
from tests.api.openai.file_search_helpers import (
    PARIS,
    ROME,
    SEARCH,
    markers_of,
    tool_message,
    upload,
)
from tests.runs.conftest import workspace_key
from tests.support.fake_model import FakeModel, Hang, Reply, ToolCalls, Turn
from tests.support.server import run_server


def test_a_taken_over_run_keeps_its_search_results(
    database: str, tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> None:
    data_dir: Path = tmp_path_factory.mktemp("fs-restart")
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url, "ASSISTD_SHUTDOWN_TIMEOUT_S": "1"}
    model = fake_model.new_model()
    answers: list[str] = []

    def respond(body: dict[str, Any]) -> Turn:
        output = tool_message(body)
        if output is None:
            return ToolCalls([("file_search", {"queries": ["Eiffel Tower"]})])
        answers.append(output)
        if len(answers) == 1:
            return Hang(120)  # the first server stops while the model writes the reply
        return Reply(f"330 metres.{markers_of(output)['paris.txt']}")

    fake_model.respond(model, respond)
    with run_server(data_dir, database, **env) as first:
        _, key = workspace_key(first)
        with sdk(first, key) as client:
            paris, rome = upload(client, "paris.txt", PARIS), upload(client, "rome.txt", ROME)
            assistant = client.beta.assistants.create(
                model=model, tools=[SEARCH],
                tool_resources={"file_search": {"vector_stores": [{"file_ids": [paris, rome]}]}},
            )  # fmt: skip
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tall?"}])
            run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
            _until_asked(answers)
            # Gone from the store now: a search run again would not find it.
            client.files.delete(rome)

    with run_server(data_dir, database, **env) as second, sdk(second, key) as client:
        done = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
        assert done.status == "completed", done.last_error
        # The model read the same results again: from the step, not from a new search
        # (which would no longer find the deleted file).
        assert answers[1] == answers[0] and "rome.txt" in answers[1]
        steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc")
        (call,) = steps.data[0].step_details.tool_calls  # type: ignore[union-attr]
        assert {r.file_id for r in call.file_search.results} == {paris, rome}  # type: ignore[union-attr]
        (reply,) = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
        (citation,) = reply.content[0].text.annotations  # type: ignore[union-attr]
        assert citation.file_citation.file_id == paris  # type: ignore[union-attr]


def _until_asked(answers: list[str]) -> None:
    """Until the model has been asked for the reply (the search's results committed)."""
    deadline = time.monotonic() + 60
    while not answers:
        assert time.monotonic() < deadline, "the model was never asked for the reply"
        time.sleep(0.05)
