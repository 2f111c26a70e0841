"""Built-in tools this server cannot run (search, images, ... with nothing configured) are
accepted on assistants and kept there, but never offered to the model: one line of its
instructions names them unavailable, so the answer can tell the user. The server's tools
that do run record what they made with their call, so a reply that comes after the client
answered a function call in the same round still carries it."""

from __future__ import annotations

import json

import dashscope
import httpx
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.runs.helpers import WEATHER, collect, delta_text, names, ok, settle
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json
from tests.support.server import RunningServer
from tests.tools.helpers import assert_links_to, image_link

SEARCH = {"type": "quark_search", "description": "Searches the web."}
UNAVAILABLE = "unavailable on this server"


def _system(request: dict[str, object]) -> str:
    messages = request["messages"]
    assert isinstance(messages, list)
    return "\n".join(str(m["content"]) for m in messages if m["role"] == "system")


def _offered(request: dict[str, object]) -> list[str]:
    tools = request.get("tools") or []
    assert isinstance(tools, list)
    return [t["function"]["name"] for t in tools]


def test_unconfigured_builtin_is_not_offered_and_the_model_is_told(
    ds: str, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(Reply("Web search is not available here."))
    assistant = ok(
        Assistants.create(
            model=model, instructions="Be brief.", tools=[SEARCH, {"type": "calculator"}]
        )
    )
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Search ragdolls."}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert names(events)[-1] == "thread.run.completed", names(events)
    assert "thread.run.step.delta" not in names(events)
    assert delta_text(events) == "Web search is not available here."

    [request] = fake_model.requests(model)
    assert _offered(request) == ["calculator"]
    system = _system(request)
    assert system.startswith("Be brief.")
    [line] = [line for line in system.splitlines() if UNAVAILABLE in line]
    assert "quark_search" in line and "calculator" not in line
    # The assistant keeps its tool entry, as given.
    kept = ok(Assistants.retrieve(assistant.id)).tools
    assert [t["type"] if isinstance(t, dict) else t.type for t in kept] == [
        "quark_search", "calculator",
    ]  # fmt: skip


def test_a_call_of_an_unoffered_builtin_is_answered_without_the_client(
    ds: str, fake_model: FakeModel
) -> None:
    """Small models call what they were not offered: the call keeps the built-in's type
    and gets an output saying it is unavailable, and the run goes on to an answer instead
    of asking the client."""
    model = fake_model.new_model(
        ToolCalls([("quark_search", {"query": "ragdoll cats"})]), Reply("Answered without it.")
    )
    assistant = ok(Assistants.create(model=model, tools=[SEARCH]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Search ragdolls."}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert names(events)[-1] == "thread.run.completed", names(events)
    assert "thread.run.requires_action" not in names(events)
    first, second = fake_model.requests(model)
    assert _offered(first) == [] and UNAVAILABLE in _system(first)
    [told] = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert "'quark_search' is unavailable on this server" in told
    first_delta = next(data for name, data in events if name == "thread.run.step.delta")
    assert first_delta.delta.step_details.tool_calls[0]["type"] == "quark_search"
    [step] = [
        s for s in ok(Steps.list(events[1][1].id, thread_id=thread.id)).data
        if s.type == "tool_calls"
    ]  # fmt: skip
    [call] = step.step_details.tool_calls
    assert call["quark_search"]["output"] == told
    assert ok(Messages.list(thread.id)).data[0].content[0].text.value == "Answered without it."


def test_non_streamed_run_with_an_unconfigured_builtin(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("I cannot draw here."))
    assistant = ok(Assistants.create(model=model, tools=[{"type": "text_to_image"}]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Draw a cat."}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    done = settle(thread.id, run.id)
    assert done.status == "completed", as_json(done)
    assert ok(Messages.list(thread.id)).data[0].content[0].text.value == "I cannot draw here."
    [request] = fake_model.requests(model)
    assert "text_to_image" in _system(request) and not request.get("tools")


def test_builtin_and_function_calls_in_one_round_keep_what_the_builtin_made(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    """The built-in is answered by the server; only the function goes to the client. The
    QR code it drew reaches the reply, written after the client's output came in."""
    model = fake_model.new_model(
        ToolCalls([("generate_qrcode", {"text": "oslo"}), ("get_weather", {"city": "Oslo"})]),
        Reply("Cold."),
    )
    tools = [{"type": "generate_qrcode"}, WEATHER]
    assistant = ok(Assistants.create(model=model, tools=tools))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Oslo?"}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert names(events)[-1] == "thread.run.requires_action"
    deltas = [data for name, data in events if name == "thread.run.step.delta"]
    types = {d.delta.step_details.tool_calls[0]["type"] for d in deltas}
    assert types == {"generate_qrcode", "function"}  # subscript works on both kinds
    # The built-in's end streams too: its output, and no more of its input.
    [end] = [
        d.delta.step_details.tool_calls[0] for d in deltas
        if d.delta.step_details.tool_calls[0]["type"] == "generate_qrcode"
        and d.delta.step_details.tool_calls[0]["generate_qrcode"].get("output")
    ]  # fmt: skip
    assert end["generate_qrcode"]["input"] == ""
    run = events[-1][1]
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    rest = collect(
        Runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"output": "-3C"}], stream=True
        )
    )
    assert names(rest)[-1] == "thread.run.completed"
    streamed = delta_text(rest)  # the image's link streams too
    assert streamed == f"Cold.\n\n![image]({image_link(streamed)})"
    step = ok(Steps.list(run.id, thread_id=thread.id, order="asc")).data[0]
    qr, weather = step.step_details.tool_calls
    assert json.loads(qr["generate_qrcode"]["input"]) == {"text": "oslo"}
    assert qr["generate_qrcode"]["output"] == end["generate_qrcode"]["output"]
    assert weather.function.output == "-3C"

    headers = {"Authorization": f"Bearer {dashscope.api_key}"}
    with httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30) as raw:
        reply = raw.get(f"/threads/{thread.id}/messages?limit=1").json()["data"][0]
    assert [p["type"] for p in reply["content"]] == ["image_file", "text"], reply
    assert reply["content"][1]["text"]["value"] == streamed
    assert_links_to(image_link(streamed), server, reply["content"][0]["image_file"]["file_id"])
