"""A database written before tool calls were typed keeps working: its steps held each call
in the DashScope wire shape and its runs their `required_action` likewise. Such rows read
back as they were shown, feed the model's context, and take tool outputs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashscope import Assistants, Runs, Threads

from tests.runs.conftest import sdk_at, workspace_key
from tests.runs.helpers import WEATHER, ok, settle, wait_done
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer, run_server


def _legacy_call(call: dict[str, Any]) -> dict[str, Any]:
    """A call as the server stored it before (its DashScope wire shape)."""
    if call["type"] == "function":
        function = {k: call[k] for k in ("name", "arguments", "output")}
        return {"id": call["id"], "type": "function", "function": function}
    body = {"input": call["arguments"], "output": call["output"]}
    return {"id": call["id"], "type": call["type"], call["type"]: body}


def _make_legacy(db: Path, run_id: str) -> None:
    with sqlite3.connect(db) as conn:
        for step_id, details in conn.execute(
            "SELECT id, step_details FROM run_steps WHERE run_id = ?", (run_id,)
        ).fetchall():
            parsed = json.loads(details)
            parsed["tool_calls"] = [_legacy_call(c) for c in parsed["tool_calls"]]
            conn.execute(
                "UPDATE run_steps SET step_details = ? WHERE id = ?", (json.dumps(parsed), step_id)
            )
        [(action,)] = conn.execute("SELECT required_action FROM runs WHERE id = ?", (run_id,))
        calls = [_legacy_call(c) for c in json.loads(action)["tool_calls"]]
        for call in calls:
            del call["function"]["output"]
        legacy = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}
        conn.execute(
            "UPDATE runs SET required_action = ? WHERE id = ?", (json.dumps(legacy), run_id)
        )


def _raw(server: RunningServer, key: str, path: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30) as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def test_rows_of_the_old_shape_still_work(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> None:
    data_dir = tmp_path_factory.mktemp("old-rows")
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url}
    model = fake_model.new_model(
        ToolCalls([("calculator", {"expression": "6*7"}), ("get_weather", {"city": "Riga"})]),
        Reply("42, and windy."),
    )
    with run_server(data_dir, **env) as first:
        _, key = workspace_key(first)
        with sdk_at(first, key):
            assistant = ok(Assistants.create(model=model, tools=[{"type": "calculator"}, WEATHER]))
            thread = ok(Threads.create(messages=[{"role": "user", "content": "6*7, Riga?"}]))
            run = ok(Runs.create(thread.id, assistant_id=assistant.id))
            assert settle(thread.id, run.id).status == "requires_action"
        steps_path = f"/threads/{thread.id}/runs/{run.id}/steps"
        run_path = f"/threads/{thread.id}/runs/{run.id}"
        before = _raw(first, key, steps_path)["data"], _raw(first, key, run_path)["required_action"]

    _make_legacy(data_dir / "assistd.db", run.id)
    with run_server(data_dir, **env) as second, sdk_at(second, key):
        after = (
            _raw(second, key, steps_path)["data"],
            _raw(second, key, run_path)["required_action"],
        )
        assert after == before
        [calculator, weather] = before[0][0]["step_details"]["tool_calls"]
        assert calculator["calculator"]["output"] == "42"
        ok(
            Runs.submit_tool_outputs(
                run.id, thread_id=thread.id, tool_outputs=[{"output": "9 m/s"}]
            )
        )
        assert wait_done(thread.id, run.id).status == "completed"
    told = [m for m in fake_model.requests(model)[-1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in told] == ["42", "9 m/s"]
    assert [m["tool_call_id"] for m in told] == [calculator["id"], weather["id"]]
