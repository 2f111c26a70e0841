"""A real framework on the Assistants API, unmodified: Agency Swarm 0.7.2 (openai 1.x) runs
its getting-started example against assistd with the scripted model. The CEO agent hands
the task to the Developer through the framework's own SendMessage tool (a function call
whose output is the Developer's answer from a run on a second thread); the Developer calls
a custom tool; the replies come back through messages.list, or through the SDK's streaming
helpers (`runs.stream`, `submit_tool_outputs_stream`) with the framework's event handler.

The framework lives in its own venv (.venv/agency-swarm, made by `scripts/install.sh dev`
from requirements/agency-swarm.txt); the example runs there as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.openai_sdk import ROOT
from tests.support.server import RunningServer

PYTHON = ROOT / ".venv" / "agency-swarm" / "bin" / "python"
EXAMPLE = Path(__file__).with_name("agency_swarm_example.py")
TASK = "Please create a new website for our client."
BRIEF = {
    "recipient": "Developer",
    "my_primary_instructions": "1. Have the Developer build the site. 2. Report back.",
    "message": "Build the client's home page as index.html.",
}
DONE = "The website is ready: index.html."
BUILT = "I built index.html."


def run_example(server: RunningServer, key: str, cwd: Path, *args: str) -> dict[str, Any]:
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: run `scripts/install.sh dev`")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ASSISTD_"))}
    env.update(OPENAI_BASE_URL=f"{server.base_url}/v1", OPENAI_API_KEY=key)
    done = subprocess.run(
        [str(PYTHON), str(EXAMPLE), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def scripted_agents(fake_model: FakeModel, page: str) -> tuple[str, str]:
    """Fresh model names for the CEO and the Developer, each scripted for one task."""
    ceo = fake_model.new_model(ToolCalls([("SendMessage", BRIEF)]), Reply(DONE))
    developer = fake_model.new_model(
        ToolCalls([("MyCustomTool", {"example_field": page})]), Reply(BUILT)
    )
    return ceo, developer


def sent_texts(request: dict[str, Any]) -> str:
    """What a model request carried from the user and from tools."""
    return "\n".join(
        str(m["content"]) for m in request["messages"] if m["role"] in ("user", "tool")
    )


def assert_conversation(fake_model: FakeModel, ceo: str, developer: str) -> None:
    """Each agent's model saw what the other sent: the brief, then tool and agent results."""
    dev_calls = fake_model.requests(developer)
    assert len(dev_calls) == 2
    assert BRIEF["message"] in sent_texts(dev_calls[0])
    assert "Wrote index.html" in sent_texts(dev_calls[1])
    ceo_calls = fake_model.requests(ceo)
    assert len(ceo_calls) == 2
    assert TASK in sent_texts(ceo_calls[0])
    assert BUILT in sent_texts(ceo_calls[1])


def assistants_by_name(raw: httpx.Client) -> dict[str, dict[str, Any]]:
    listed = raw.get("/assistants")
    assert listed.status_code == 200, listed.text
    return {a["name"]: a for a in listed.json()["data"]}


def test_getting_started_example(
    server: RunningServer,
    workspace: tuple[str, str],
    raw: httpx.Client,
    fake_model: FakeModel,
    tmp_path: Path,
) -> None:
    ceo, developer = scripted_agents(fake_model, "index.html")
    first = run_example(server, workspace[1], tmp_path, ceo, developer, "backend")

    assert first["completion"] == DONE
    assert (tmp_path / "index.html").read_text() == "<h1>Welcome</h1>\n"  # the tool ran
    assert_conversation(fake_model, ceo, developer)
    # The agents are assistants on assistd, in the key's workspace, as the framework made them.
    made = assistants_by_name(raw)
    assert sorted(a["id"] for a in made.values()) == sorted(first["assistants"])
    assert made["CEO"]["model"] == ceo and made["Developer"]["model"] == developer
    assert [t["function"]["name"] for t in made["CEO"]["tools"]] == ["SendMessage"]
    assert [t["function"]["name"] for t in made["Developer"]["tools"]] == ["MyCustomTool"]

    # Again in the same folder, streamed: the framework finds its agents in its
    # settings.json, retrieves them, and updates them to the new models.
    (tmp_path / "index.html").unlink()
    ceo, developer = scripted_agents(fake_model, "index.html")
    second = run_example(server, workspace[1], tmp_path, ceo, developer, "stream")

    assert second["completion"] == DONE
    assert second["assistants"] == first["assistants"]
    assert (tmp_path / "index.html").exists()
    assert_conversation(fake_model, ceo, developer)
    seen = second["stream"]
    assert seen["ended"] is True
    assert seen["tool_calls"] == [["CEO", "function"], ["Developer", "function"]]
    assert [text for *_, text in seen["texts"]] == [BUILT, DONE]
    updated = assistants_by_name(raw)
    assert updated["CEO"]["model"] == ceo and updated["Developer"]["model"] == developer
    assert len(updated) == 2
