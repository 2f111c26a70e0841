"""The /v1 object calls on the openai SDK's other supported major versions: the last 1.x
(1.109.1) and 2.x (2.54.0), beside the venv's 3.x that the other tests use.

`scripts/install.sh dev` puts each in the venv's directory as openai-<version>
(`--no-deps --target`); the script below runs in a subprocess with that directory first
on PYTHONPATH, so it imports that version while its dependencies come from the venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.api.openai.conftest import openai_url
from tests.support.server import RunningServer

VERSIONS = ("1.109.1", "2.54.0")
SDK_ROOT = Path(sys.prefix)

SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import openai

client = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
seen = {"version": openai.__version__, "module": openai.__file__}
ids = [client.beta.assistants.create(model="m", name=str(i)).id for i in range(3)]
seen["paged"] = [a.id for a in client.beta.assistants.list(limit=1)] == ids[::-1]
file = client.files.create(file=("a.txt", b"abc"), purpose="assistants")
assistant = client.beta.assistants.update(
    ids[0], tools=[{"type": "code_interpreter"}],
    tool_resources={"code_interpreter": {"file_ids": [file.id]}},
)
seen["files"] = assistant.tool_resources.code_interpreter.file_ids == [file.id]
thread = client.beta.threads.create(
    messages=[{"role": "user", "content": "hi", "attachments": [
        {"file_id": file.id, "tools": [{"type": "code_interpreter"}]}]}],
    metadata={"k": "v"},
)
message = client.beta.threads.messages.create(thread.id, role="user", content="more")
newest = client.beta.threads.messages.list(thread.id, limit=1).data
seen["newest"] = [m.id for m in newest] == [message.id]
first = client.beta.threads.messages.list(thread.id, order="asc").data[0]
seen["attachment"] = first.attachments[0].tools[0].type
seen["text"] = first.content[0].text.value
seen["content"] = client.files.content(file.id).content.decode()
seen["deleted"] = client.beta.threads.messages.delete(message.id, thread_id=thread.id).deleted
for name, call in (
    ("missing", lambda: client.beta.threads.retrieve("thread_none")),
    ("bad", lambda: client.beta.assistants.create(model="m", temperature=9)),
):
    try:
        call()
    except openai.APIStatusError as exc:
        seen[name] = [type(exc).__name__, exc.status_code, exc.body, bool(exc.request_id)]
seen["thread_deleted"] = client.beta.threads.delete(thread.id).deleted
print(json.dumps(seen))
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_object_calls_on_other_sdk_versions(
    server: RunningServer, workspace: tuple[str, str], version: str
) -> None:
    sdk_dir = SDK_ROOT / f"openai-{version}"
    if not (sdk_dir / "openai").is_dir():
        reason = f"openai {version} is not installed in {sdk_dir} (run scripts/install.sh dev)"
        print(reason)
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": str(sdk_dir)}
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_PROJECT_ID", "OPENAI_ORG_ID"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, openai_url(server), workspace[1]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    assert seen["version"] == version and seen["module"].startswith(str(sdk_dir))
    assert seen["paged"] and seen["files"] and seen["newest"] and seen["deleted"]
    assert (seen["attachment"], seen["text"], seen["content"]) == ("code_interpreter", "hi", "abc")
    assert seen["missing"][:2] == ["NotFoundError", 404] and seen["missing"][3]
    assert seen["missing"][2]["message"] == "No thread found with id 'thread_none'."
    assert seen["bad"][:2] == ["BadRequestError", 400]
    assert seen["bad"][2]["param"] == "temperature"
    assert seen["thread_deleted"] is True
