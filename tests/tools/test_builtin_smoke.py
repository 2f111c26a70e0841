"""Built-in tools driven by the scripted model through the real SDK."""

from __future__ import annotations

import httpx
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer


def _run(model: str, tools: list[dict[str, str]], question: str) -> tuple[str, str]:
    assistant = Assistants.create(model=model, tools=tools)
    thread = Threads.create(messages=[{"role": "user", "content": question}])
    run = Runs.wait(Runs.create(thread.id, assistant_id=assistant.id).id, thread_id=thread.id)
    assert run.status == "completed", run
    return thread.id, run.id


def test_code_interpreter_state_and_plot(
    ds: str, fake_model: FakeModel, server: RunningServer
) -> None:
    code = "import matplotlib.pyplot as plt\nxs = list(range(-5, 6))\nplt.plot(xs, [x * x for x in xs])\nplt.show()\ny = 41"
    model = fake_model.new_model(
        ToolCalls([("code_interpreter", {"code": code})]),
        Reply("Here is the plot."),
        ToolCalls([("code_interpreter", {"code": "y + 1"})]),
        Reply("42"),
    )
    thread_id, run_id = _run(model, [{"type": "code_interpreter"}], "plot y = x^2")
    answer = Messages.list(thread_id).data[0]
    kinds = [part.type for part in answer.content]
    assert kinds == ["image_file", "text"], answer
    steps = Steps.list(run_id, thread_id=thread_id).data
    tool_step = next(s for s in steps if s.type == "tool_calls")
    call = tool_step.step_details.tool_calls[0]
    assert "image" in call["output"] if isinstance(call, dict) else True
    # The image is a real PNG downloadable through the Files API.
    raw = httpx.get(
        f"{server.dashscope_url}/threads/{thread_id}/messages",
        headers={"Authorization": f"Bearer {__import__('dashscope').api_key}"},
    ).json()
    file_id = raw["data"][0]["content"][0]["image_file"]["file_id"]
    png = httpx.get(
        f"{server.dashscope_url}/files/{file_id}/content",
        headers={"Authorization": f"Bearer {__import__('dashscope').api_key}"},
    )
    assert png.content.startswith(b"\x89PNG")
    # State persists into the next run on the same thread.
    Messages.create(thread_id, content="and y+1?")
    assistant_id = Runs.retrieve(run_id, thread_id=thread_id).assistant_id
    run2 = Runs.wait(Runs.create(thread_id, assistant_id=assistant_id).id, thread_id=thread_id)
    step2 = next(s for s in Steps.list(run2.id, thread_id=thread_id).data if s.type == "tool_calls")
    raw_step = httpx.get(
        f"{server.dashscope_url}/threads/{thread_id}/runs/{run2.id}/steps/{step2.id}",
        headers={"Authorization": f"Bearer {__import__('dashscope').api_key}"},
    ).json()
    assert "42" in raw_step["step_details"]["tool_calls"][0]["output"], raw_step
