"""/v1 runs through the openai SDK's other supported major versions (1.109.1 and 2.54.0,
installed by `scripts/install.sh dev` beside the venv's 3.x; see test_sdk_versions.py):
the poll helpers, the stream helpers with an AssistantEventHandler, raw stream=True and
create-and-run, each version reading the same wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.api.openai.conftest import openai_url
from tests.api.openai.run_helpers import WEATHER
from tests.api.openai.test_sdk_versions import SDK_ROOT, VERSIONS
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer

SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import openai
from openai import AssistantEventHandler

base_url, key, model, tools = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
runs = client.beta.threads.runs
seen = {"version": openai.__version__, "module": openai.__file__}


class Handler(AssistantEventHandler):
    def __init__(self):
        super().__init__()
        self.events, self.text, self.calls = [], "", []

    def on_event(self, event):
        self.events.append(event.event)

    def on_text_delta(self, delta, snapshot):
        self.text += delta.value or ""

    def on_tool_call_done(self, tool_call):
        self.calls.append([tool_call.function.name, tool_call.function.arguments])


assistant = client.beta.assistants.create(model=model, tools=tools)
thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
# 1: the stream helper stops at requires_action with the call's arguments complete
first = Handler()
with runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=first) as s:
    s.until_done()
waiting = first.current_run
seen["waiting"] = [waiting.status, first.calls[-1], first.events[-1]]
call = waiting.required_action.submit_tool_outputs.tool_calls[0]
# 2: submit_tool_outputs_stream goes on to the answer
second = Handler()
with runs.submit_tool_outputs_stream(
    run_id=waiting.id, thread_id=thread.id, event_handler=second,
    tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}],
) as s:
    s.until_done()
    seen["answer"] = [s.get_final_run().status, second.text, len(s.get_final_messages())]
# 3: create_and_poll, then submit_tool_outputs_and_poll
run = runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
call = run.required_action.submit_tool_outputs.tool_calls[0]
done = runs.submit_tool_outputs_and_poll(
    run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "x"}]
)
seen["polled"] = [run.status, done.status]
# 4: raw stream=True
events = [e.event for e in runs.create(thread_id=thread.id, assistant_id=assistant.id,
                                       stream=True, tool_choice="none")]
seen["raw"] = [events[0], events[-1], events.count("thread.message.delta")]
# 5: create_and_run_poll and create_and_run_stream
made = client.beta.threads.create_and_run_poll(
    assistant_id=assistant.id, tool_choice="none",
    thread={"messages": [{"role": "user", "content": "hello"}]},
)
third = Handler()
with client.beta.threads.create_and_run_stream(
    assistant_id=assistant.id, tool_choice="none", event_handler=third,
    thread={"messages": [{"role": "user", "content": "hello"}]},
) as s:
    s.until_done()
seen["create_and_run"] = [made.status, third.events[0], third.events[-1], third.text]
print(json.dumps(seen))
"""


def sdk_dir(version: str) -> Path:
    """Where that version is installed; `OPENAI_SDKS_DIR` points a test run elsewhere."""
    return Path(os.environ.get("OPENAI_SDKS_DIR") or SDK_ROOT) / f"openai-{version}"


@pytest.mark.parametrize("version", VERSIONS)
def test_run_helpers_on_other_sdk_versions(
    server: RunningServer, workspace: tuple[str, str], fake_model: FakeModel, version: str
) -> None:
    where = sdk_dir(version)
    if not (where / "openai").is_dir():
        pytest.skip(f"openai {version} is not installed in {where} (run scripts/install.sh dev)")
    call = ToolCalls([("get_weather", {"city": "Paris"})])
    model = fake_model.new_model(
        call, Reply("It is sunny."), call, Reply("ok"), Reply("raw answer"), Reply("made"),
        Reply("streamed"),
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(where)}
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_PROJECT_ID", "OPENAI_ORG_ID"):
        env.pop(name, None)
    args = [openai_url(server), workspace[1], model, json.dumps([WEATHER])]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    assert seen["version"] == version and seen["module"].startswith(str(where))
    assert seen["waiting"] == [
        "requires_action",
        ["get_weather", '{"city": "Paris"}'],
        "thread.run.requires_action",
    ]
    assert seen["answer"] == ["completed", "It is sunny.", 1]
    assert seen["polled"] == ["requires_action", "completed"]
    assert seen["raw"] == ["thread.run.created", "thread.run.completed", 2]
    assert seen["create_and_run"] == ["completed", "thread.created", "thread.run.completed",
                                      "streamed"]  # fmt: skip
