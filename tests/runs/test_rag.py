"""DashScope's `rag` tool through the real dashscope SDK: knowledge bases made through the
real openai SDK on /v1 with the same key, their chunks in the instructions at the
`${documents}` placeholder, the search recorded as a `rag` step, and the `[n]` markers
the model wrote as `file_citation` annotations."""

from __future__ import annotations

import json
import time
from typing import Any

import dashscope
import httpx
import openai
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.api.openai.conftest import sdk
from tests.conftest import make_workspace
from tests.runs.helpers import WEATHER, collect, names, ok, wait_for
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json, assert_error
from tests.support.server import RunningServer

CATS = "Ragdoll cats are calm and large. A ragdoll cat likes to eat fish and chicken."
DOGS = "Border collies are herding dogs. A border collie needs long walks every day."
QUESTION = "What do ragdoll cats like to eat?"
INSTRUCTIONS = "Answer from these documents only:\n${documents}\nCite them as [n]."


def knowledge_base(
    server: RunningServer, files: dict[str, str], key: str | None = None
) -> tuple[str, dict[str, str]]:
    """A vector store of `files` made on /v1 with `key` (the dashscope SDK's by default),
    its files ingested: (its id, file id by name)."""
    with sdk(server, key or str(dashscope.api_key)) as client:
        ids = {
            name: client.files.create(file=(name, text.encode()), purpose="assistants").id
            for name, text in files.items()
        }
        store = client.vector_stores.create(name="kb", file_ids=list(ids.values()))
        _ingested(client, store.id, len(files))
    return store.id, ids


def _ingested(client: openai.OpenAI, store_id: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while client.vector_stores.retrieve(store_id).file_counts.completed < count:
        assert time.monotonic() < deadline, "the files were not ingested"
        time.sleep(0.1)


def rag_tool(*pipeline_ids: str, placeholder: str = "${documents}", **top: int) -> dict[str, Any]:
    query_word = {"type": "str", "value": placeholder}
    return {
        "type": "rag",
        "prompt_ra": {
            "pipeline_id": list(pipeline_ids),
            "parameters": {"type": "object", "properties": {"query_word": query_word}},
            **top,
        },
    }


def _system(request: dict[str, Any]) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"] if m["role"] == "system")


def _offered(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


def _run(assistant_id: str, question: str = QUESTION) -> tuple[str, Any]:
    thread = ok(Threads.create(messages=[{"role": "user", "content": question}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant_id))
    return thread.id, wait_for(thread.id, run.id, "completed", "failed", "requires_action")


def _rag_call(thread_id: str, run_id: str) -> dict[str, Any]:
    steps = as_json(ok(Steps.list(run_id, thread_id=thread_id, order="asc")))["data"]
    [call] = steps[0]["step_details"]["tool_calls"]
    assert steps[0]["status"] == "completed" and call["type"] == "rag", steps[0]
    return dict(call["rag"])


def test_rag_fills_the_placeholder_records_the_step_and_cites(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    store_id, files = knowledge_base(server, {"cats.txt": CATS, "dogs.txt": DOGS})
    model = fake_model.new_model(Reply("They like fish [1]. See also [7] and [x]."))
    tool = rag_tool(store_id, rerank_top_n=1, multiknowledge_rerank_top_n=1)
    assistant = ok(Assistants.create(model=model, instructions=INSTRUCTIONS, tools=[tool]))
    thread_id, run = _run(assistant.id)
    assert run.status == "completed", as_json(run)

    [request] = fake_model.requests(model)
    system = _system(request)
    assert "${documents}" not in system and "unavailable" not in system
    assert f"[1] (cats.txt) {CATS}" in system and DOGS not in system
    assert system.endswith("Cite them as [n].")
    assert _offered(request) == []  # prompt augmentation, not a function

    call = _rag_call(thread_id, run.id)
    assert json.loads(call["input"]) == {"query_word": QUESTION, "pipeline_id": [store_id]}
    [doc] = json.loads(call["output"])
    assert doc["index"] == 1 and doc["doc_id"] == files["cats.txt"]
    assert doc["doc_name"] == "cats.txt" and doc["text"] == CATS
    assert 0 < doc["score"] <= 1

    [reply] = ok(Messages.list(thread_id, order="desc", limit=1)).data
    text = reply.content[0].text
    [citation] = text.annotations  # [7] names no document, [x] is no marker
    assert citation["type"] == "file_citation" and citation["text"] == "[1]"
    assert text.value[citation["start_index"] : citation["end_index"]] == "[1]"
    assert citation["file_citation"] == {"file_id": files["cats.txt"], "quote": CATS}


def test_each_base_gives_its_best_and_the_total_is_capped(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    cats, _ = knowledge_base(server, {"cats.txt": CATS})
    dogs, _ = knowledge_base(server, {"dogs.txt": DOGS})
    model = fake_model.new_model(Reply("Fish."))
    tool = rag_tool(cats, dogs, rerank_top_n=1, multiknowledge_rerank_top_n=2)
    assistant = ok(Assistants.create(model=model, instructions=INSTRUCTIONS, tools=[tool]))
    thread_id, run = _run(assistant.id)
    docs = json.loads(_rag_call(thread_id, run.id)["output"])
    assert [d["doc_name"] for d in docs] == ["cats.txt", "dogs.txt"]  # the cats text is nearer
    assert [d["index"] for d in docs] == [1, 2]
    system = _system(fake_model.requests(model)[0])
    assert "[1] (cats.txt)" in system and "[2] (dogs.txt)" in system


def test_without_the_placeholder_nothing_is_injected_but_the_search_is_recorded(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    store_id, _ = knowledge_base(server, {"cats.txt": CATS})
    model = fake_model.new_model(Reply("Fish [1]."))
    tool = rag_tool(store_id, placeholder="${docs}")  # the instructions say ${documents}
    assistant = ok(Assistants.create(model=model, instructions=INSTRUCTIONS, tools=[tool]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Hello there."}]))
    ok(Messages.create(thread.id, content="Thanks.", role="assistant"))
    ok(Messages.create(thread.id, content=QUESTION))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    run = wait_for(thread.id, run.id, "completed", "failed")
    assert run.status == "completed", as_json(run)
    assert _system(fake_model.requests(model)[0]) == INSTRUCTIONS
    call = _rag_call(thread.id, run.id)
    assert json.loads(call["input"])["query_word"] == QUESTION  # the newest user message
    [doc] = json.loads(call["output"])
    assert doc["doc_name"] == "cats.txt"
    [reply] = ok(Messages.list(thread.id, order="desc", limit=1)).data
    assert reply.content[0].text.annotations == []  # the model was shown no chunk to cite


def test_an_unknown_or_foreign_knowledge_base_is_refused(
    ds: str, server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(Reply("unused"))
    missing = Assistants.create(model=model, tools=[rag_tool("vs_missing")])
    assert_error(missing, 400, "InvalidParameter", "vs_missing", "prompt_ra.pipeline_id")
    no_ids = Assistants.create(model=model, tools=[{"type": "rag", "prompt_ra": {}}])
    assert_error(no_ids, 400, "InvalidParameter", "pipeline_id")
    bad_top = Assistants.create(model=model, tools=[rag_tool("vs_x", rerank_top_n=0)])
    assert_error(bad_top, 400, "InvalidParameter", "rerank_top_n")

    _, other_key = make_workspace(admin)
    foreign, _ = knowledge_base(server, {"cats.txt": CATS}, key=other_key)
    elsewhere = Assistants.create(model=model, tools=[rag_tool(foreign)])
    assert_error(elsewhere, 400, "InvalidParameter", foreign)
    mine = ok(Assistants.create(model=model))
    updated = Assistants.update(mine.id, model=model, tools=[rag_tool("vs_nope")])
    assert_error(updated, 400, "InvalidParameter", "vs_nope")
    thread = ok(Threads.create(messages=[{"role": "user", "content": QUESTION}]))
    run = Runs.create(thread.id, assistant_id=mine.id, tools=[rag_tool("vs_gone")])
    assert_error(run, 400, "InvalidParameter", "vs_gone")


def test_a_knowledge_base_deleted_since_fails_the_run_naming_it(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    store_id, _ = knowledge_base(server, {"cats.txt": CATS})
    model = fake_model.new_model(Reply("unused"))
    assistant = ok(
        Assistants.create(model=model, instructions=INSTRUCTIONS, tools=[rag_tool(store_id)])
    )
    with sdk(server, str(dashscope.api_key)) as client:
        client.vector_stores.delete(store_id)
    thread_id, run = _run(assistant.id)
    assert run.status == "failed", as_json(run)
    assert run.last_error["code"] == "knowledge_base_not_found"
    assert store_id in run.last_error["message"]
    assert fake_model.requests(model) == []
    [step] = ok(Steps.list(run.id, thread_id=thread_id)).data
    assert step.status == "failed"


def test_rag_with_a_function_tool_searches_once_across_legs(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    store_id, files = knowledge_base(server, {"cats.txt": CATS, "dogs.txt": DOGS})
    model = fake_model.new_model(
        ToolCalls([("get_weather", {"city": "Hangzhou"})]), Reply("Fish [1], and sunny.")
    )
    tools = [rag_tool(store_id), WEATHER]
    assistant = ok(Assistants.create(model=model, instructions=INSTRUCTIONS, tools=tools))
    thread_id, run = _run(assistant.id)
    assert run.status == "requires_action", as_json(run)
    [call] = run.required_action.submit_tool_outputs.tool_calls
    ok(Runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=[{"output": "sunny"}]))
    assert wait_for(thread_id, run.id, "completed", "failed").status == "completed"

    first, second = fake_model.requests(model)
    for request in (first, second):
        assert f"(cats.txt) {CATS}" in _system(request)
        assert _offered(request) == ["get_weather"]
    replayed = [m for m in second["messages"] if m.get("tool_calls")]
    assert [c["function"]["name"] for m in replayed for c in m["tool_calls"]] == ["get_weather"]

    steps = ok(Steps.list(run.id, thread_id=thread_id, order="asc")).data
    kinds = [s.step_details.tool_calls[0]["type"] if s.type == "tool_calls" else s.type
             for s in steps]  # fmt: skip
    assert kinds == ["rag", "function", "message_creation"], kinds
    assert steps[1].step_details.tool_calls[0].function.output == "sunny"
    [reply] = ok(Messages.list(thread_id, order="desc", limit=1)).data
    [citation] = reply.content[0].text.annotations
    assert citation["file_citation"]["file_id"] == files["cats.txt"]
    assert call.function.name == "get_weather"


def test_the_rag_step_streams_before_the_reply(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    store_id, files = knowledge_base(server, {"cats.txt": CATS})
    model = fake_model.new_model(Reply("Fish [1]."))
    assistant = ok(
        Assistants.create(model=model, instructions=INSTRUCTIONS, tools=[rag_tool(store_id)])
    )
    thread = ok(Threads.create(messages=[{"role": "user", "content": QUESTION}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    seen = names(events)
    assert seen[-1] == "thread.run.completed", seen
    created = seen.index("thread.run.step.created")
    done = seen.index("thread.run.step.completed")
    assert seen[created : done + 1].count("thread.run.step.delta") == 2
    assert done < seen.index("thread.message.created")

    deltas = [as_json(d) for n, d in events if n == "thread.run.step.delta"]
    start, end = (d["delta"]["step_details"]["tool_calls"][0] for d in deltas)
    assert start["type"] == "rag" and start["rag"]["output"] is None
    assert json.loads(start["rag"]["input"])["query_word"] == QUESTION
    assert json.loads(end["rag"]["output"])[0]["doc_id"] == files["cats.txt"]
    completed = as_json([d for n, d in events if n == "thread.message.completed"][-1])
    [citation] = completed["content"][0]["text"]["annotations"]
    assert citation["file_citation"]["file_id"] == files["cats.txt"]


def test_rag_on_v1_with_the_same_key(ds: str, server: RunningServer, fake_model: FakeModel) -> None:
    """Keys work on both surfaces: an assistant made on /v1 with the rag tool answers
    there too, its citation a `file_citation` the openai SDK reads."""
    store_id, files = knowledge_base(server, {"cats.txt": CATS})
    model = fake_model.new_model(Reply("Fish [1]."))
    with sdk(server, str(dashscope.api_key)) as client:
        assistant = client.beta.assistants.create(
            model=model,
            instructions=INSTRUCTIONS,
            tools=[rag_tool(store_id)],  # type: ignore[list-item]
        )
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": QUESTION}]},
        )
        assert run.status == "completed", run
        [reply] = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
        steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc")
    assert f"(cats.txt) {CATS}" in _system(fake_model.requests(model)[0])
    [citation] = reply.content[0].text.annotations  # type: ignore[union-attr]
    assert citation.type == "file_citation" and citation.text == "[1]"
    assert citation.file_citation.file_id == files["cats.txt"]  # type: ignore[union-attr]
    # An unknown call type parses as a CodeInterpreterToolCall, its own key kept as extra.
    [call] = steps.data[0].step_details.tool_calls  # type: ignore[union-attr]
    assert call.type == "rag"  # type: ignore[comparison-overlap]
    assert json.loads(call.rag["output"])[0]["doc_id"] == files["cats.txt"]  # type: ignore[union-attr]
