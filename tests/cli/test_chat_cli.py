"""`assistd chat`: the real command in a pseudo-terminal (pexpect), against the real server
(--url) and against a local data dir it serves itself, with the scripted fake model."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pexpect

from tests.cli.test_cli import succeeds
from tests.conftest import make_workspace
from tests.support.fake_model import FakeModel, Gate, Reply, ToolCalls
from tests.support.server import RunningServer, free_port, run_server, server_env

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CODE = (
    "import matplotlib.pyplot as plt\nprint(sum(range(10)))\nplt.plot([0, 1], [0, 1])\nplt.show()\n"
)
THREAD = re.compile(r"new thread (thread_\w+)")
PROMPT = "you> "
REPO_ROOT = Path(__file__).resolve().parents[2]


def _sdk(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key, max_retries=0)


def _assistant(client: openai.OpenAI, model: str, **options: Any) -> Any:
    return client.beta.assistants.create(model=model, **options)


def _env(base: dict[str, str]) -> dict[str, str]:
    # TERM=dumb: rich writes no escape codes, so the tests read plain text
    return {**base, "TERM": "dumb", "COLUMNS": "200"}


def _as_at_a_terminal() -> None:
    """Ctrl-C as a user's terminal delivers it: a test pass started in the background by a
    script (scripts/test.sh's lanes) inherits SIGINT ignored, and Python then keeps
    ignoring it, so the chat would never see the Ctrl-C under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def _chat(*args: str, env: dict[str, str], cwd: Path | None = None) -> Iterator[pexpect.spawn]:
    child = pexpect.spawn(
        sys.executable, ["-m", "assistd", "chat", *args], env=_env(env), encoding="utf-8",
        timeout=60, dimensions=(50, 200), cwd=cwd, preexec_fn=_as_at_a_terminal,
    )  # fmt: skip
    try:
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)


def _remote(server: RunningServer, key: str, *args: str) -> list[str]:
    return [*args, "--url", server.base_url, "--key", key]


def _leaves(child: pexpect.spawn, how: str = "/exit") -> None:
    """At the prompt: leaves by `how` (or Ctrl-D), with exit status 0."""
    child.sendline(how) if how else child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_a_chat_streams_shows_tool_calls_and_starts_new_threads(
    server: RunningServer, admin: httpx.Client, fake_model: FakeModel, tmp_path: Path
) -> None:
    _, key = make_workspace(admin, "chat")
    with _sdk(server, key) as client:
        _chat_with_tools(server, client, key, fake_model, tmp_path)


def _chat_with_tools(
    server: RunningServer, client: openai.OpenAI, key: str, fake_model: FakeModel, tmp_path: Path
) -> None:
    model = fake_model.new_model(
        ToolCalls([("get_weather", {"city": "Paris"})], text="Let me look that up."),
        Reply("It is sunny in Paris."),
        ToolCalls([("code_interpreter", {"code": CODE})]),
        Reply("The sum is 45."),
    )
    tools: Any = [WEATHER, {"type": "code_interpreter"}]
    _assistant(client, model, name="weather helper", tools=tools)
    with _chat(*_remote(server, key, "weather helper"), env=server.env) as child:
        child.expect(THREAD)
        first = child.match.group(1)
        child.expect_exact(PROMPT)
        child.sendline("What is the weather in Paris?")
        # The text and the function call show while the run waits for its output.
        child.expect_exact("assistant> Let me look that up.")
        child.expect_exact('get_weather({"city": "Paris"})')
        child.expect_exact("output of get_weather> ")
        (run,) = client.beta.threads.runs.list(first).data
        assert run.status == "requires_action"
        child.sendline("sunny, 21 C")
        child.expect_exact("assistant> It is sunny in Paris.")
        tool_message = fake_model.requests(model)[1]["messages"][-1]
        assert tool_message["role"] == "tool" and tool_message["content"] == "sunny, 21 C"

        child.expect_exact(PROMPT)
        child.sendline("Add 0 to 9 and plot a line.")
        child.expect_exact("⚙ tool call: code_interpreter")
        child.expect_exact("⚙ code_interpreter ran:")
        child.expect_exact("print(sum(range(10)))")
        child.expect_exact("45")
        child.expect(r"image: (file_\w+)  \(save it with /save file_\w+\)")
        image_id = child.match.group(1)
        child.expect_exact("assistant> The sum is 45.")
        child.expect_exact(PROMPT)
        child.sendline(f"/save {image_id} {tmp_path / 'plot.png'}")
        child.expect_exact(f"saved {image_id} to {tmp_path / 'plot.png'}")
        assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")

        child.expect_exact(PROMPT)
        child.sendline("/new")
        child.expect(THREAD)
        second = child.match.group(1)
        assert second != first
        child.expect_exact(PROMPT)
        child.sendline("hello again")
        child.expect_exact("assistant> echo: hello again")
        child.expect_exact(PROMPT)  # the run has ended
        last = fake_model.requests(model)[-1]["messages"]
        assert [m["content"] for m in last if m["role"] == "user"] == ["hello again"]
        assert [m.content[0].text.value for m in client.beta.threads.messages.list(second)] == [
            "echo: hello again",
            "hello again",
        ]
        _leaves(child, "/exit")


def test_ctrl_c_cancels_the_run_on_the_server(
    server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    _, key = make_workspace(admin, "chat")
    gate = Gate("too late")
    with _sdk(server, key) as client:
        assistant = _assistant(client, fake_model.new_model(gate))
        try:
            _interrupt(server, client, key, assistant.id)
        finally:
            gate.open()


def _interrupt(server: RunningServer, client: openai.OpenAI, key: str, assistant_id: str) -> None:
    thread_id = client.beta.threads.create().id  # an existing thread, given by --thread
    args = _remote(server, key, assistant_id, "--thread", thread_id)
    with _chat(*args, env=server.env) as child:
        child.expect_exact(f"on thread {thread_id}")
        child.expect_exact(PROMPT)
        child.sendline("Say something slowly.")
        run = _wait_for_run(client, thread_id)
        child.sendintr()
        child.expect(r"interrupted: run (run_\w+) is (\w+)")
        assert child.match.group(1) == run.id and child.match.group(2) == "cancelled"
        assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == (
            "cancelled"
        )
        child.expect_exact(PROMPT)
        _leaves(child, "")  # Ctrl-D


def _wait_for_run(client: openai.OpenAI, thread_id: str) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = client.beta.threads.runs.list(thread_id).data
        if runs and runs[0].status == "in_progress":
            return runs[0]
        time.sleep(0.1)
    raise AssertionError("the run never started")


def _one_line_errors(*commands: list[str], env: dict[str, str]) -> list[str]:
    """Runs the `assistd chat` commands at once (each start costs seconds); each must exit
    1 with one line on stderr, which is returned."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "assistd", "chat", *args],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for args in commands
    ]
    lines = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, out + err
        assert "Traceback" not in err
        (line,) = err.splitlines()
        lines.append(line)
    return lines


def test_an_unknown_assistant_a_bad_key_or_no_server_is_a_one_line_error(
    server: RunningServer, admin: httpx.Client
) -> None:
    _, key = make_workspace(admin, "chat")
    nowhere = f"http://127.0.0.1:{free_port()}"
    unknown, refused, unreachable = _one_line_errors(
        _remote(server, key, "nobody"),
        _remote(server, "sk-wrong", "nobody"),
        ["nobody", "--url", nowhere, "--key", key],
        env=server.env,
    )
    assert unknown == "Error: no assistant has the id or name 'nobody'"
    assert refused.startswith("Error: the server refused the API key: ")
    assert "(HTTP 401)" in refused
    assert unreachable.startswith(f"Error: cannot reach the server at {nowhere}/v1: ")


def test_save_keeps_a_files_own_name_in_the_current_folder(
    server: RunningServer, admin: httpx.Client, tmp_path: Path
) -> None:
    """The name a file came with is the uploader's (or a tool's) to choose: /save with no
    path writes it as a plain name here, never up the tree, at an absolute path or in ~."""
    _, key = make_workspace(admin, "chat")
    here, home = tmp_path / "here", tmp_path / "home"
    here.mkdir()
    home.mkdir()
    with _sdk(server, key) as client:
        _assistant(client, "any-model", name="saver")
        names = ["../up.txt", "~/home.txt", str(tmp_path / "absolute.txt")]
        ids = [client.files.create(file=(n, b"planted"), purpose="assistants").id for n in names]
    # Run from another folder: this checkout's assistd, found through PYTHONPATH.
    env = {**server.env, "HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    with _chat(*_remote(server, key, "saver"), env=env, cwd=here) as child:
        for file_id in ids:
            child.expect_exact(PROMPT)
            child.sendline(f"/save {file_id}")
            child.expect_exact(f"saved {file_id} to ")
        child.expect_exact(PROMPT)
        _leaves(child, "/exit")
    assert sorted(p.name for p in here.iterdir()) == ["absolute.txt", "home.txt", "up.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here", "home"]
    assert not list(home.iterdir())


def test_a_local_data_dir_is_served_in_process(tmp_path: Path, fake_model: FakeModel) -> None:
    data_dir = tmp_path / "data"
    model_env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url}
    with run_server(data_dir, **model_env) as running, _sdk(running, running.admin_key) as client:
        _assistant(client, "local-model", name="local helper")
    env = server_env(data_dir, "", "", **model_env)
    del env["ASSISTD_API_KEY"]  # the chat makes a key for its session
    with _chat("local helper", env=env) as child:
        child.expect(THREAD)
        child.expect_exact(PROMPT)
        child.sendline("hi there")
        child.expect_exact("assistant> echo: hi there")
        child.expect_exact(PROMPT)
        _leaves(child, "/exit")
    rows = [line.split("\t") for line in succeeds("key", "list", env=env)]
    (session_key,) = [row for row in rows if row[-1] == "assistd chat (session)"]
    assert session_key[5] == "revoked"
    assert json.dumps(rows).count("active") == 1  # the server's own admin key only
