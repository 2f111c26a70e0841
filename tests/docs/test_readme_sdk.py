"""What the README tells a newcomer about the SDK side, checked against a real server:
DASHSCOPE_HTTP_BASE_URL points an unchanged program at assistd, a wrong key prints what
the README shows, and the built-in tools it names are the ones this server runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest

from tests.support.server import RunningServer, run_server

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("readme-sdk")) as running:
        yield running


def readme() -> str:
    return README.read_text()


def readme_base_url(server: RunningServer) -> str:
    """The README's DASHSCOPE_HTTP_BASE_URL value, on the test server's address."""
    (value,) = re.findall(r"DASHSCOPE_HTTP_BASE_URL=(\S+)", readme())
    return value.replace("http://127.0.0.1:8000", server.base_url)


def run_sdk(script: str, server: RunningServer, key: str) -> subprocess.CompletedProcess[str]:
    """`script` in a fresh Python with only the SDK's environment variables set, as a user
    runs an unchanged program."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHSCOPE_")}
    env.update(
        DASHSCOPE_HTTP_BASE_URL=readme_base_url(server),
        DASHSCOPE_API_KEY=key,
        PYTHONWARNINGS="ignore",
    )
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_environment_variable_points_the_sdk_at_assistd(server: RunningServer) -> None:
    script = (
        "from dashscope import Assistants\n"
        "made = Assistants.create(model='qwen-max', name='found-by-the-env')\n"
        "print(made.status_code, made.id)\n"
    )
    done = run_sdk(script, server, server.admin_key)
    assert done.returncode == 0, done.stderr
    status, assistant_id = done.stdout.split()
    assert status == "200"
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    found = httpx.get(f"{server.dashscope_url}/assistants/{assistant_id}", headers=headers)
    assert found.status_code == 200 and found.json()["name"] == "found-by-the-env"


def test_a_wrong_key_prints_what_the_readme_shows(server: RunningServer) -> None:
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", readme(), re.S) if "code" in b]
    shown = re.search(r"prints, with a key assistd does not know:\n\n```\n(.*?)```", readme(), re.S)
    assert shown is not None
    done = run_sdk("from dashscope import Assistants\n" + snippet, server, "sk-not-a-key")
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown.group(1)


def test_the_example_with_a_wrong_key_fails_as_the_readme_says(server: RunningServer) -> None:
    (example,) = [
        b for b in re.findall(r"```python\n(.*?)```", readme(), re.S) if "Runs.wait(" in b
    ]
    quoted = re.search(r"`(AttributeError: [^`]+)`", readme())
    assert quoted is not None
    script = example.replace("http://127.0.0.1:8000", server.base_url)
    done = run_sdk(script, server, "sk-not-a-key")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == quoted.group(1)


def test_the_builtin_tools_named_are_the_ones_installed() -> None:
    line = re.search(r"\*\*Built-in tools\*\* that run on this\s+server: ([^.]+)\.", readme())
    assert line is not None
    named = set(re.findall(r"`(\w+)`", line.group(1)))
    # Types declared only so assistants may name them point at the `unavailable` factory.
    installed = {
        ep.name
        for ep in entry_points(group="assistd.tools")
        if not ep.value.startswith("assistd.tools.builtin.unavailable:")
    }
    assert named == installed
