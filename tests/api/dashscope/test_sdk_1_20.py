"""The seed's object calls on the older dashscope 1.20.x SDK (spec section 12: ASCII-escaped
JSON, `Content-Type: application/json`, no SDK id headers, no sampling fields).

`scripts/install.sh dev` puts 1.20.14 in .venv/dashscope-1.20 (`--no-deps --target`); the
script below runs in a subprocess with that directory first on PYTHONPATH, so it imports
1.20.14 while its dependencies come from the venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dashscope import Assistants, Threads

from tests.support.sdk import assert_ok
from tests.support.server import RunningServer

SDK_DIR = Path(__file__).resolve().parents[3] / ".venv" / "dashscope-1.20"

SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import dashscope
from dashscope.version import __version__
from dashscope import Assistants, Messages, Threads

dashscope.base_http_api_url, dashscope.api_key = sys.argv[1], sys.argv[2]
CAT = "Please help me draw a picture of a ragdoll cat. 布偶猫"

assistant = Assistants.create(
    model="qwen-max",
    name="Painter 画家",
    description="Draws pictures.",
    instructions="You are a painter.\nYou draw.",
    tools=[{"type": "quark_search", "description": "search"}, {"type": "text_to_image"}],
    metadata={"env": "test"},
)
thread = Threads.create()
seeded = Threads.create(
    messages=[{"role": "user", "content": "hello"}], metadata={"session_owner": "User123"}
)
message = Messages.create(thread.id, content=CAT)
listed = Messages.list(thread.id)
deleted = Threads.delete(thread.id)
gone = Threads.retrieve(thread.id)
results = {
    "version": __version__,
    "module": dashscope.__file__,
    "assistant": assistant,
    "thread": thread,
    "seeded": seeded,
    "message": message,
    "listed": listed,
    "deleted": deleted,
    "gone": gone,
}
print(json.dumps(results, ensure_ascii=False, default=lambda o: o.__dict__))
"""


def test_seed_object_calls_on_sdk_1_20(server: RunningServer, ds: str) -> None:
    if not (SDK_DIR / "dashscope").is_dir():
        reason = f"dashscope 1.20.14 is not installed in {SDK_DIR} (run scripts/install.sh dev)"
        print(reason)
        pytest.skip(reason)
    import dashscope

    env = {**os.environ, "PYTHONPATH": str(SDK_DIR)}
    env.pop("DASHSCOPE_HTTP_BASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.dashscope_url, dashscope.api_key],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    assert out["version"].startswith("1.20."), out["version"]
    assert out["module"].startswith(str(SDK_DIR))
    assistant = out["assistant"]
    assert assistant["status_code"] == 200, assistant
    assert assistant["name"] == "Painter 画家"
    assert assistant["instructions"] == "You are a painter.\nYou draw."
    assert assistant["tools"] == [
        {"type": "quark_search", "description": "search"},
        {"type": "text_to_image"},
    ]
    assert assistant["metadata"] == {"env": "test"}
    assert out["thread"]["status_code"] == 200 and out["thread"]["metadata"] == {}
    assert out["seeded"]["metadata"] == {"session_owner": "User123"}
    message = out["message"]
    assert message["status_code"] == 200
    assert message["content"][0]["text"]["value"].endswith("布偶猫")
    listed = out["listed"]
    assert [m["id"] for m in listed["data"]] == [message["id"]]
    assert (
        listed["data"][0]["content"][0]["text"]["value"] == message["content"][0]["text"]["value"]
    )
    assert out["deleted"]["status_code"] == 200 and out["deleted"]["deleted"] is True
    assert out["gone"]["status_code"] == 404 and out["gone"]["code"] == "NotFound"

    # What the old SDK wrote is what the current one reads, in the same workspace.
    seen = Assistants.retrieve(assistant["id"])
    assert_ok(seen)
    assert seen.name == "Painter 画家"
    assert Threads.retrieve(out["seeded"]["id"]).metadata == {"session_owner": "User123"}
    assert Threads.retrieve(out["thread"]["id"]).status_code == 404
