"""With the real embedded model (SmolLM2-135M, prompted tool calls): asked for a QR code,
it used to call the tool with the same text round after round, up to the cap, and then
answer nothing. Whatever it chooses now, a call is never run twice in a row, a round of
repeats is the last round, and the reply has text."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from dashscope import Assistants, Runs, Threads

from tests.runs.conftest import dedicated_server, sdk_on
from tests.runs.helpers import ok
from tests.support.sdk import as_json
from tests.support.server import RunningServer
from tests.tools.helpers import output_of, raw_client

pytestmark = pytest.mark.local_model

WAIT_S = 600  # three short turns of a 135M model on a loaded 2-core machine, and its load


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with dedicated_server("sqlite", tmp_path_factory.mktemp("local-loop")) as server:
        yield server


def _raw(server: RunningServer, path: str) -> Any:
    with raw_client(server) as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def _key(call: dict[str, Any]) -> tuple[str, str]:
    arguments = json.loads(call[call["type"]]["input"])
    return call["type"], json.dumps(arguments, sort_keys=True)


def test_a_repeated_qr_call_ends_in_a_reply(local_server: RunningServer) -> None:
    with sdk_on(local_server):
        assistant = ok(
            Assistants.create(
                model="qwen-max",
                instructions="Use the generate_qrcode tool.",
                tools=[{"type": "generate_qrcode"}],
            )
        )
        question = "Make a QR code of the text hello. Use the tool."
        thread = ok(Threads.create(messages=[{"role": "user", "content": question}]))
        run = ok(Runs.create(thread.id, assistant_id=assistant.id, max_tokens=64, temperature=0))
        done = Runs.wait(run.id, thread_id=thread.id, timeout_seconds=WAIT_S)
        assert done.status == "completed", as_json(done)

        base = f"/threads/{thread.id}/runs/{run.id}"
        steps = _raw(local_server, f"{base}/steps?order=asc&limit=100")["data"]
        rounds = [s["step_details"]["tool_calls"] for s in steps if s["type"] == "tool_calls"]
        for before, after in itertools.pairwise(rounds):
            made = {_key(call) for call in before}
            repeats = [c for c in after if _key(c) in made]
            assert all(output_of(c).startswith("Not run again") for c in repeats), rounds
            assert len(repeats) < len(after) or after is rounds[-1], rounds
        messages = _raw(local_server, f"/threads/{thread.id}/messages?limit=100")["data"]
        [reply] = [m for m in messages if m["run_id"] == run.id]
        text = "".join(p["text"]["value"] for p in reply["content"] if p["type"] == "text")
        assert text.strip(), reply
