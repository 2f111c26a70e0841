"""The flows of the vendor's Assistant API guides (shared/spec/seed-flows.md F1-F4, F6,
F7), written the way a user following those guides writes them: plain SDK calls, status
checks, prints. Only the base URL and the key differ from the guides (the `ds` fixture
sets both); the fake model answers in place of Qwen."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import Assistants, Messages, Runs, Steps, Threads
from dashscope.common.error import TimeoutException

from tests.conftest import make_workspace
from tests.runs.helpers import BIG_ADD, WEATHER
from tests.support.fake_model import FakeModel, Hang, Reply, ToolCalls
from tests.support.server import RunningServer

PAINTER_INSTRUCTIONS = """You are a painting assistant.
When the user asks for a picture, call the text_to_image tool with a detailed prompt.
When the user asks about facts, search the web with quark_search first.
Always answer in the user's language."""
PAINTER_TOOLS = [
    {"type": "quark_search", "description": "Use this tool to search the web."},
    {"type": "text_to_image", "description": "Use this tool to draw pictures."},
]
CAT = "Please help me draw a picture of a ragdoll cat."


def check_status(component: Any, operation: str) -> bool:
    """What the guide's users write after every call."""
    if component.status_code == HTTPStatus.OK:
        print(f"{operation} succeeded")
        return True
    print(f"{operation} failed: code={component.code} message={component.message}")
    return False


def dump(obj: Any) -> str:
    return json.dumps(
        obj, ensure_ascii=False, default=lambda o: o.__dict__, sort_keys=True, indent=4
    )


def create_painter() -> Any:
    assistant = Assistants.create(
        model="qwen-max",
        name="Painting assistant",
        description="An assistant that draws pictures and searches the web.",
        instructions=PAINTER_INSTRUCTIONS,
        tools=PAINTER_TOOLS,
    )
    assert check_status(assistant, "create assistant")
    return assistant


@pytest.fixture
def qwen_max(fake_model: FakeModel) -> Iterator[Callable[..., None]]:
    """Scripts what `qwen-max` answers next, and checks afterwards that exactly the
    scripted turns were used (so nothing is left over for another test)."""
    before = len(fake_model.requests("qwen-max"))
    scripted: list[int] = []

    def script(*turns: Any) -> None:
        scripted.append(len(turns))
        fake_model.script("qwen-max", *turns)

    yield script
    assert len(fake_model.requests("qwen-max")) - before == sum(scripted)


# ---- F1 -----------------------------------------------------------------------------


def test_f1_painting_assistant_not_streamed(
    ds: str, qwen_max: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    qwen_max(
        ToolCalls([("text_to_image", {"prompt": "a ragdoll cat, oil painting"})]),
        Reply("Here is your ragdoll cat: fluffy, blue-eyed and calm."),
    )
    assistant = create_painter()
    thread = Threads.create()
    assert check_status(thread, "create thread")
    message = Messages.create(thread.id, content=CAT)
    assert check_status(message, "create message")
    run = Runs.create(thread.id, assistant_id=assistant.id)
    assert check_status(run, "create run")
    run = Runs.wait(run.id, thread_id=thread.id)
    print(run.status)
    assert run.status == "completed"

    msgs = Messages.list(thread.id)
    assert check_status(msgs, "list messages")
    answer = msgs.data[0]
    printed = dump(answer)
    print(printed)
    parsed = json.loads(printed)
    assert parsed["role"] == "assistant"
    assert parsed["content"][0]["text"]["value"] == (
        "Here is your ragdoll cat: fluffy, blue-eyed and calm."
    )
    print(dump(msgs))  # the whole list serialises too
    print(dump(Steps.list(run.id, thread_id=thread.id)))
    out = capsys.readouterr().out
    assert "failed: code=" not in out and "\ncompleted\n" in out


# ---- F2 -----------------------------------------------------------------------------


def test_f2_painting_assistant_streamed(
    ds: str, qwen_max: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    qwen_max(Reply("A ragdoll cat, drawn in soft pastel colours."))
    assistant = create_painter()
    thread = Threads.create(messages=[{"role": "user", "content": CAT}])
    assert check_status(thread, "create thread")
    run_iterator = Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    seen = []
    for event, msg in run_iterator:
        print(event)
        print(msg)  # every streamed object prints
        seen.append(event)
    msgs = Messages.list(thread.id)
    assert check_status(msgs, "list messages")
    print(json.dumps(msgs, default=lambda x: x.__dict__, ensure_ascii=False, indent=4))

    assert seen[0] == "thread.run.created" and seen[-1] == "thread.run.completed"
    assert msgs.data[0].content[0].text.value == "A ragdoll cat, drawn in soft pastel colours."
    out = capsys.readouterr().out
    assert "thread.message.delta" in out and "failed: code=" not in out


# ---- F3 and F4 ----------------------------------------------------------------------


def stream_chat(thread_id: str, assistant_id: str, user_input: str) -> Iterator[str]:
    """The overview's streaming chat turn: text as it comes, the tool in use shown once."""
    Messages.create(thread_id=thread_id, role="user", content=user_input)
    run_iterator = Runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True)
    tool_shown = False
    for event, data in run_iterator:
        if event == "thread.message.delta":
            yield data.delta.content.text.value
        elif event == "thread.message.completed":
            yield "\n"
        elif event == "thread.run.step.delta":
            tool_call = data.delta.step_details.tool_calls[0]
            if not tool_shown:
                yield f"Using tool: {tool_call['type']}\n"
                tool_shown = True
            yield f"[{tool_call}]"


def test_f3_streaming_chat_loop_shows_tool_names(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(
        Reply("Hello! How can I help?"),
        ToolCalls([("quark_search", {"query": "ragdoll temperament"})]),
        Reply("Ragdolls are gentle."),
    )
    assistant = Assistants.create(model=model, name="chat", tools=PAINTER_TOOLS[:1])
    assert check_status(assistant, "create assistant")
    thread = Threads.create()
    first = "".join(stream_chat(thread.id, assistant.id, "Hi"))
    assert first == "Hello! How can I help?\n"
    second = "".join(stream_chat(thread.id, assistant.id, "What are ragdolls like?"))
    assert second.startswith("Using tool: quark_search\n"), second
    assert second.endswith("Ragdolls are gentle.\n"), second
    history = Messages.list(thread_id=thread.id, order="asc").data
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]


def big_add(left: int, right: int) -> str:
    return str(left + right)


def get_weather(city: str) -> str:
    return f"Sunny in {city}"


FUNCTIONS: dict[str, Callable[..., str]] = {"big_add": big_add, "get_weather": get_weather}


def run_with_functions(thread_id: str, assistant_id: str) -> tuple[str, str]:
    """The overview's function-calling loop: inside the streaming loop, a requires_action
    run gets its outputs (without tool_call_id) and the loop carries on with the new
    stream. Returns the text and the event that ended the run."""
    text = []
    ended = ""
    stream: Any = Runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True)
    while stream is not None:
        next_stream = None
        for event, data in stream:
            if event == "thread.message.delta":
                text.append(data.delta.content.text.value)
            elif event == "thread.run.requires_action":
                outputs = []
                for call in data.required_action.submit_tool_outputs.tool_calls:
                    function = FUNCTIONS[call.function.name]
                    output = function(**json.loads(call.function.arguments))
                    outputs.append({"output": output})
                next_stream = Runs.submit_tool_outputs(
                    thread_id=thread_id, run_id=data.id, tool_outputs=outputs, stream=True
                )
            elif event in (
                "thread.run.completed", "thread.run.cancelled",
                "thread.run.expired", "thread.run.failed",
            ):  # fmt: skip
                ended = event
        stream = next_stream
    return "".join(text), ended


def test_f4_function_calling_streamed_outputs_without_ids(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(
        ToolCalls(
            [
                ("big_add", {"left": 87787, "right": 788988737}),
                ("get_weather", {"city": "Hangzhou"}),
            ]
        ),
        ToolCalls([("big_add", {"left": 1, "right": 2})]),
        Reply("87787 + 788988737 = 789076524, it is sunny, and 1 + 2 = 3."),
    )
    assistant = Assistants.create(
        model=model, name="calculator", instructions="Use the tools.", tools=[BIG_ADD, WEATHER]
    )
    assert check_status(assistant, "create assistant")
    thread = Threads.create()
    Messages.create(thread_id=thread.id, role="user", content="87787 + 788988737? Weather?")
    text, ended = run_with_functions(thread.id, assistant.id)
    assert ended == "thread.run.completed"
    assert text == "87787 + 788988737 = 789076524, it is sunny, and 1 + 2 = 3."

    # Each output went to the call it answers, in the order of the calls.
    requests = fake_model.requests(model)
    calls = {
        c["id"]: c["function"]["name"]
        for m in requests[-1]["messages"] if m.get("tool_calls") for c in m["tool_calls"]
    }  # fmt: skip
    results = {
        m["tool_call_id"]: m["content"] for m in requests[-1]["messages"] if m["role"] == "tool"
    }
    assert sorted((calls[i], out) for i, out in results.items()) == [
        ("big_add", "3"), ("big_add", "789076524"), ("get_weather", "Sunny in Hangzhou"),
    ]  # fmt: skip


# ---- F6 -----------------------------------------------------------------------------


def test_f6_best_practices_chatbot(ds: str) -> None:
    assistant = Assistants.create(
        model="qwen-plus",
        name="ChatAssistant",
        instructions="You are a helpful assistant.",
        metadata={"env": "test"},
    )
    assert check_status(assistant, "create assistant")
    thread = Threads.create(metadata={"session_owner": "User123"})
    assert check_status(thread, "create thread")
    user_input = "What is the capital of France?"
    message = Messages.create(thread_id=thread.id, content=user_input, role="user")
    assert check_status(message, "create message")
    run = Runs.create(thread_id=thread.id, assistant_id=assistant.id, model="qwen-plus")
    assert check_status(run, "create run")
    run = Runs.wait(run.id, thread_id=thread.id, timeout_seconds=60)
    assert run.status == "completed"
    messages = Messages.list(thread_id=thread.id)
    reply = messages.data[0].content[0].text.value
    assert reply == f"echo: {user_input}"  # the fake model's unscripted answer

    deleted = Threads.delete(thread.id)
    assert check_status(deleted, "delete thread") and deleted.deleted is True
    # The thread went with its messages, runs and steps.
    assert Threads.retrieve(thread.id).status_code == 404
    assert Messages.list(thread_id=thread.id).status_code == 404
    assert Runs.retrieve(run.id, thread_id=thread.id).status_code == 404
    assert Runs.list(thread.id).status_code == 404
    assert Steps.list(run.id, thread_id=thread.id).status_code == 404
    assert Assistants.retrieve(assistant.id).metadata == {"env": "test"}


def test_f6_wait_timeout_raises_the_sdk_exception(ds: str, fake_model: FakeModel) -> None:
    assistant = Assistants.create(model=fake_model.new_model(Hang(60)), name="slow")
    thread = Threads.create(metadata={"session_owner": "User123"})
    Messages.create(thread_id=thread.id, content="take your time", role="user")
    run = Runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(TimeoutException):
        Runs.wait(run.id, thread_id=thread.id, timeout_seconds=1)
    assert Runs.cancel(run.id, thread_id=thread.id).status_code == 200
    assert Runs.wait(run.id, thread_id=thread.id, timeout_seconds=60).status == "cancelled"


# ---- F7 -----------------------------------------------------------------------------


def test_f7_runs_in_named_workspaces(
    ds: str, server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    ws_a = ds
    ws_b, _ = make_workspace(admin)
    dashscope.api_key = server.admin_key  # one key that may act in every workspace
    model = fake_model.new_model(Reply("from A"), Reply("streamed in A"))

    assistant = Assistants.create(model=model, name="tenant A", workspace=ws_a)
    assert check_status(assistant, "create assistant")
    thread = Threads.create(metadata={"owner": "a"}, workspace=ws_a)
    assert check_status(thread, "create thread")
    Messages.create(thread.id, content="hello", workspace=ws_a)
    run = Runs.create(thread.id, assistant_id=assistant.id, workspace=ws_a)
    assert check_status(run, "create run")
    run = Runs.wait(run.id, thread_id=thread.id, workspace=ws_a)
    assert run.status == "completed"
    assert Messages.list(thread.id, workspace=ws_a).data[0].content[0].text.value == "from A"
    steps = Steps.list(run.id, thread_id=thread.id, workspace=ws_a)
    assert [s.type for s in steps.data] == ["message_creation"]
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True, workspace=ws_a))
    assert events[-1][0] == "thread.run.completed"

    # Workspace B sees none of it and cannot touch it.
    for result in (
        Runs.retrieve(run.id, thread_id=thread.id, workspace=ws_b),
        Runs.list(thread.id, workspace=ws_b),
        Runs.cancel(run.id, thread_id=thread.id, workspace=ws_b),
        Runs.update(run.id, thread_id=thread.id, metadata={"x": "y"}, workspace=ws_b),
        Steps.list(run.id, thread_id=thread.id, workspace=ws_b),
        Runs.create(thread.id, assistant_id=assistant.id, workspace=ws_b),
        Runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"output": "x"}], workspace=ws_b
        ),
        Assistants.retrieve(assistant_id=assistant.id, workspace=ws_b),
        Assistants.delete(assistant_id=assistant.id, workspace=ws_b),
    ):
        assert result.status_code == 404, result
    assert Runs.retrieve(run.id, thread_id=thread.id, workspace=ws_a).metadata == {}
    assert len(Runs.list(thread.id, workspace=ws_a).data) == 2

    found = Assistants.retrieve(assistant_id=assistant.id, workspace=ws_a)
    assert check_status(found, "retrieve assistant") and found.name == "tenant A"
    deleted = Assistants.delete(assistant_id=assistant.id, workspace=ws_a)
    assert check_status(deleted, "delete assistant") and deleted.deleted is True
