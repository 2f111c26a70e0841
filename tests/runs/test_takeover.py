"""A server killed (SIGKILL) in the middle of a run leaves nothing lost or doubled: the
server started again on the same storage takes the run over from what it committed. A
reply the model was writing is asked again and replaces the partial one; tool calls that
had finished (and what they made) are kept and not run again, the unfinished ones run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.runs.conftest import sdk_at, workspace_key
from tests.runs.helpers import ok, wait_done
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json
from tests.support.server import RunningServer, run_server
from tests.support.slow_server import slow_server

PLUGIN = Path(__file__).parents[1] / "support" / "tool_plugin"
LONG = " ".join(f"word{i}" for i in range(400))


def _kill(server: RunningServer) -> None:
    assert server.process is not None
    server.process.kill()  # SIGKILL: no shutdown code runs
    server.process.wait()


def _poll(find: Any, what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while (found := find()) is None:
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)
    return found


def _replies(thread_id: str) -> list[Any]:
    return [m for m in ok(Messages.list(thread_id)).data if m.role == "assistant"]


def _calls(thread_id: str, run_id: str) -> list[dict[str, Any]]:
    steps = ok(Steps.list(run_id, thread_id=thread_id, order="asc")).data
    return [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]


def _output(call: dict[str, Any]) -> Any:
    return call[call["type"]]["output"]


def test_a_reply_cut_off_by_a_kill_is_asked_again_and_replaces_the_partial_one(
    database: str, tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> None:
    data_dir = tmp_path_factory.mktemp("takeover-reply")
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url}
    model = fake_model.new_model(Reply(LONG, tokens_per_s=20), Reply("The whole answer."))
    with run_server(data_dir, database, **env) as first:
        _, key = workspace_key(first)
        with sdk_at(first, key):
            thread = ok(Threads.create(messages=[{"role": "user", "content": "Tell me."}]))
            run = ok(Runs.create(thread.id, assistant_id=ok(Assistants.create(model=model)).id))
            partial = _poll(lambda: next(iter(_replies(thread.id)), None), "the reply start")
            assert partial.status == "in_progress"
            _kill(first)

    with run_server(data_dir, database, **env) as second, sdk_at(second, key):
        done = wait_done(thread.id, run.id)
        assert done.status == "completed", as_json(done)
        (reply,) = _replies(thread.id)
        assert reply.id != partial.id and reply.status == "completed"
        assert reply.content[0].text.value == "The whole answer."
        steps = ok(Steps.list(run.id, thread_id=thread.id)).data
        assert [(s.type, s.status) for s in steps] == [("message_creation", "completed")]
        assert steps[0].step_details.message_creation.message_id == reply.id
    assert len(fake_model.requests(model)) == 2  # the cut-off turn, and the one asked again


def test_tool_calls_finished_before_a_kill_are_not_run_again(
    database: str, tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> None:
    data_dir = tmp_path_factory.mktemp("takeover-tools")
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url, "PYTHONPATH": str(PLUGIN)}
    tools = [{"type": "generate_qrcode"}, {"type": "slow_fetch"}]
    with slow_server() as slow:
        calls = [("generate_qrcode", {"text": "oslo"}), ("slow_fetch", {"url": slow.held_url("b")})]
        model = fake_model.new_model(ToolCalls(calls), Reply("Here it is."))
        with run_server(data_dir, database, **env) as first:
            _, key = workspace_key(first)
            with sdk_at(first, key):
                thread = ok(Threads.create(messages=[{"role": "user", "content": "Both."}]))
                assistant = ok(Assistants.create(model=model, tools=tools))
                run = ok(Runs.create(thread.id, assistant_id=assistant.id))
                slow.wait_started(1)
                # The QR code's output (with its image) is committed as soon as it is made,
                # while the other call of the round still runs.
                made = _poll(lambda: _output(_calls(thread.id, run.id)[0]), "the QR code")
                _kill(first)
        slow.wait_abandoned(1)
        slow.release()  # the call that was cut off answers at once when run again

        with run_server(data_dir, database, **env) as second, sdk_at(second, key):
            done = wait_done(thread.id, run.id)
            assert done.status == "completed", as_json(done)
            steps = ok(Steps.list(run.id, thread_id=thread.id, order="asc")).data
            assert [(s.type, s.status) for s in steps] == [
                ("tool_calls", "completed"),
                ("message_creation", "completed"),
            ]
            qr, fetched = _calls(thread.id, run.id)
            assert _output(qr) == made  # the same image file: the QR code was not made again
            assert json.loads(_output(fetched))["id"] == "b"
            # Raw JSON: the dashscope SDK drops an image part's file id.
            (reply,) = [
                m
                for m in _get(second, key, f"threads/{thread.id}/messages")
                if m["role"] == "assistant"
            ]
            images = [
                p["image_file"]["file_id"] for p in reply["content"] if p["type"] == "image_file"
            ]
            assert len(images) == 1 and images[0] in made
            files = _get(second, key, "files")["files"]
    assert [f["file_id"] for f in files if f["purpose"] == "assistants_output"] == images
    assert slow.log.started == ["b", "b"] and slow.log.answered == ["b"]
    assert len(fake_model.requests(model)) == 2  # the round was not asked of the model again


def _get(server: RunningServer, key: str, path: str) -> Any:
    """A list endpoint's `data`, as JSON."""
    listed = httpx.get(
        f"{server.dashscope_url}/{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert listed.status_code == 200, listed.text
    return listed.json()["data"]
