"""OpenAI's file_search tool in /v1 runs, through the openai SDK: the model searches the
assistant's and the thread's vector stores, its step shows the results (their text only
with `include[]`), and the markers it cites become file_citation annotations, never
one it made up."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
from openai import AssistantEventHandler
from typing_extensions import override

from tests.api.openai.file_search_helpers import (
    KYOTO,
    PARIS,
    ROME,
    SEARCH,
    search_then_cite,
    tool_message,
    upload,
)
from tests.api.openai.run_helpers import data_of, raw_stream, sse_events
from tests.support.fake_model import FakeModel

CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def _assistant(client: openai.OpenAI, model: str, files: list[str], **tool: Any) -> Any:
    """An assistant whose one vector store is made inline from `files`."""
    return client.beta.assistants.create(
        model=model, tools=[{**SEARCH, **tool}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": files}]}},
    )  # fmt: skip


def _run(client: openai.OpenAI, assistant_id: str, question: str, **options: Any) -> Any:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, **options
    )
    assert run.status == "completed", run.last_error
    return run


def _search_call(client: openai.OpenAI, run: Any, **options: Any) -> Any:
    steps = client.beta.threads.runs.steps.list(
        run_id=run.id, thread_id=run.thread_id, order="asc", **options
    )
    (call,) = steps.data[0].step_details.tool_calls  # type: ignore[union-attr]
    assert call.type == "file_search"
    return call


def test_a_cited_marker_becomes_a_file_citation(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    paris, rome = upload(client, "paris.txt", PARIS), upload(client, "rome.txt", ROME)
    # After the real marker, two the results never gave: annotated neither.
    invented = " See also 【0:7†paris.txt】 and 【3:0†rome.txt】."
    model = search_then_cite(fake_model, "How tall is the Eiffel Tower?", "paris.txt", invented)
    assistant = _assistant(client, model, [paris, rome])
    (store_id,) = assistant.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
    assert store_id.startswith("vs_")

    run = _run(client, assistant.id, "How tall is the Eiffel Tower?")
    (reply,) = client.beta.threads.messages.list(thread_id=run.thread_id, run_id=run.id).data
    text = reply.content[0].text  # type: ignore[union-attr]
    (citation,) = text.annotations
    assert citation.type == "file_citation"
    assert citation.file_citation.file_id == paris  # type: ignore[union-attr]
    assert text.value[citation.start_index : citation.end_index] == citation.text
    assert citation.text.startswith("【0:") and citation.text.endswith("†paris.txt】")

    call = _search_call(client, run)
    results = call.file_search.results
    assert {r.file_name for r in results} == {"paris.txt", "rome.txt"}
    assert results[0].file_id == paris and results[0].file_name == "paris.txt"
    assert all(0 <= r.score <= 1 and r.content is None for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert call.file_search.ranking_options.score_threshold == 0  # type: ignore[union-attr]
    # The model read the results with their markers and was told to cite with them.
    output = tool_message(fake_model.requests(model)[-1]) or ""
    assert "330 metres" in output and "【0:0†paris.txt】" in output and "never" in output


def test_include_shows_the_results_text(client: openai.OpenAI, fake_model: FakeModel) -> None:
    paris, rome = upload(client, "paris.txt", PARIS), upload(client, "rome.txt", ROME)
    model = search_then_cite(fake_model, "Colosseum spectators", "rome.txt")
    assistant = _assistant(client, model, [paris, rome])
    run = _run(client, assistant.id, "How many people fit in the Colosseum?")

    call = _search_call(client, run, include=[CONTENT])
    top = call.file_search.results[0]
    assert top.file_name == "rome.txt" and top.content is not None
    assert "80,000 spectators" in top.content[0].text and top.content[0].type == "text"
    step_id = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=run.thread_id).data[-1]
    one = client.beta.threads.runs.steps.retrieve(
        step_id.id, thread_id=run.thread_id, run_id=run.id, include=[CONTENT]
    )
    assert one.step_details.tool_calls[0].file_search.results[0].content  # type: ignore[union-attr]


def test_max_num_results_and_score_threshold(client: openai.OpenAI, fake_model: FakeModel) -> None:
    files = [upload(client, n, t) for n, t in
             (("paris.txt", PARIS), ("rome.txt", ROME), ("kyoto.txt", KYOTO))]  # fmt: skip
    model = search_then_cite(fake_model, "Golden Pavilion temple", "kyoto.txt")
    options = {"max_num_results": 1, "ranking_options": {"score_threshold": 0.0}}
    assistant = _assistant(client, model, files, file_search=options)
    run = _run(client, assistant.id, "What is Kinkaku-ji?")
    (only,) = _search_call(client, run).file_search.results
    assert only.file_name == "kyoto.txt"
    assert (tool_message(fake_model.requests(model)[-1]) or "").count("†") == 2  # one result

    strict = search_then_cite(fake_model, "Golden Pavilion temple", "kyoto.txt")
    high = {"ranking_options": {"score_threshold": 1.0, "ranker": "auto"}}
    assistant = _assistant(client, strict, files, file_search=high)
    run = _run(client, assistant.id, "What is Kinkaku-ji?")
    call = _search_call(client, run)
    # Only a chunk first by every method scores 1.0; the rest are cut.
    assert len(call.file_search.results) <= 1
    assert call.file_search.ranking_options.ranker == "default_2024_08_21"  # type: ignore[union-attr]


class Watcher(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.created: list[str] = []
        self.done: list[Any] = []

    @override
    def on_tool_call_created(self, tool_call: Any) -> None:
        self.created.append(tool_call.type)

    @override
    def on_tool_call_done(self, tool_call: Any) -> None:
        self.done.append(tool_call)


def test_a_streamed_run_shows_the_search_and_its_citation(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    paris = upload(client, "paris.txt", PARIS)
    model = search_then_cite(fake_model, "Eiffel Tower height", "paris.txt")
    assistant = _assistant(client, model, [paris])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "How tall?"}])
    watcher = Watcher()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=watcher
    ) as stream:
        stream.until_done()
        (reply,) = stream.get_final_messages()
    assert watcher.created == ["file_search"]
    done = watcher.done[-1]
    assert done.type == "file_search" and done.file_search.results[0].file_id == paris
    (citation,) = reply.content[0].text.annotations  # type: ignore[union-attr]
    assert citation.file_citation.file_id == paris  # type: ignore[union-attr]


def test_runs_create_with_include_streams_the_results_text(
    client: openai.OpenAI, raw: httpx.Client, fake_model: FakeModel
) -> None:
    paris = upload(client, "paris.txt", PARIS)
    model = search_then_cite(fake_model, "Eiffel Tower height", "paris.txt")
    assistant = _assistant(client, model, [paris])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "How tall?"}])
    path = f"/threads/{thread.id}/runs?include[]={CONTENT}"
    events = sse_events(raw_stream(raw, path, {"assistant_id": assistant.id}))
    (completed,) = [
        s for s in data_of(events, "thread.run.step.completed")
        if s["step_details"]["type"] == "tool_calls"
    ]  # fmt: skip
    (call,) = completed["step_details"]["tool_calls"]
    assert "330 metres" in call["file_search"]["results"][0]["content"][0]["text"]
    deltas = [
        c for d in data_of(events, "thread.run.step.delta")
        for c in d["delta"]["step_details"]["tool_calls"]
    ]  # fmt: skip
    assert deltas[0] == {"index": 0, "id": call["id"], "type": "file_search", "file_search": {}}
    assert deltas[-1]["file_search"]["results"][0]["file_id"] == paris
    (message,) = data_of(events, "thread.message.completed")
    assert message["content"][0]["text"]["annotations"][0]["type"] == "file_citation"


def test_an_unknown_include_is_refused(client: openai.OpenAI, raw: httpx.Client) -> None:
    thread = client.beta.threads.create()
    answer = raw.get(f"/threads/{thread.id}/runs/run_x/steps", params={"include[]": "everything"})
    assert answer.status_code == 400
    assert json.loads(answer.text)["error"]["param"] == "include"


def test_a_search_with_no_store_tells_the_model(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    model = search_then_cite(fake_model, "anything", "none.txt")
    assistant = client.beta.assistants.create(model=model, tools=[SEARCH])
    run = _run(client, assistant.id, "Search.")
    assert _search_call(client, run).file_search.results == []
    assert "no files to search" in (tool_message(fake_model.requests(model)[-1]) or "")
