"""A server whose Python lacks xllamacpp (the `local` extra, the embedded model's runtime)
says so at start, with the command that installs it, when some model name goes to the
local model; and a run on that model fails with a message in our words, not an import
error. xllamacpp is hidden from the server's process by a `sitecustomize` module on its
PYTHONPATH (the package itself stays installed)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
from dashscope import Assistants, Runs, Threads

from tests.ops.conftest import server_output
from tests.runs.conftest import sdk_on
from tests.runs.helpers import ok, wait_done
from tests.support.fake_model import FakeModel
from tests.support.sdk import as_json
from tests.support.server import RunningServer, run_server

WARNING = "the local model cannot run: its runtime, xllamacpp, is not installed"


def _hidden_runtime(tmp_path: Path) -> dict[str, str]:
    """Environment under which `import xllamacpp` fails in the server's process."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['xllamacpp'] = None\n")
    paths = [str(shim), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def _output_with(server: RunningServer, text: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while text not in (seen := server_output(server)):
        assert time.monotonic() < deadline, f"{text!r} never appeared in:\n{seen}"
        time.sleep(0.2)
    return seen


def test_a_missing_runtime_is_named_at_start_with_its_command(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", **_hidden_runtime(tmp_path)) as server:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200  # it still serves
        seen = _output_with(server, WARNING)
        [line] = [line for line in seen.splitlines() if WARNING in line]
        assert f"{sys.executable} -m pip install 'xllamacpp" in line, line
        assert "`local` extra" in line, line

        with sdk_on(server):
            assistant = ok(Assistants.create(model="qwen-max"))
            thread = ok(Threads.create(messages=[{"role": "user", "content": "hi"}]))
            run = wait_done(thread.id, ok(Runs.create(thread.id, assistant_id=assistant.id)).id)
        assert run.status == "failed", as_json(run)
        assert run.last_error["code"] == "model_unavailable", as_json(run)
        message = run.last_error["message"]
        assert message.startswith("The local model is not installed on this server"), message
        assert "xllamacpp" not in message and sys.executable not in message, message
        # The operator's log line for that run names the command, under the same error id.
        error_id = message.rsplit("error id ", 1)[1].rstrip(".)")
        logged = _output_with(server, error_id)
        assert any(error_id in x and "pip install" in x for x in logged.splitlines()), logged


def test_no_word_of_it_when_no_name_goes_to_the_local_model(
    tmp_path: Path, fake_model: FakeModel
) -> None:
    env = {**_hidden_runtime(tmp_path), "ASSISTD_OPENAI_BASE_URL": fake_model.base_url}
    with run_server(tmp_path / "data", **env) as server:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
        seen = server_output(server)
    assert "Application startup complete" in seen or "listening on" in seen, seen
    assert "local model" not in seen, seen
