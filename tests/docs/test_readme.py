"""The README's example runs as written against a fresh server, answered by the embedded
local model (no model routing configured): docs that execute."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import run_server

KEY = "sk-readme-" + "0" * 32  # ASSISTD_API_KEY needs 32 characters or more
README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    """The README's main example: the one Python block that waits for a run."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return [block for block in blocks if "Runs.wait(" in block]


def test_readme_has_the_f1_example() -> None:
    (example,) = _python_blocks()
    for call in (
        "Assistants.create(",
        "Threads.create()",
        "Messages.create(",
        "Runs.wait(",
        "Messages.list(",
    ):
        assert call in example


@pytest.mark.local_model
def test_readme_example_runs_on_the_local_model(tmp_path: Path) -> None:
    (example,) = _python_blocks()
    with run_server(tmp_path / "server", admin_key=KEY) as server:
        script = example.replace("http://127.0.0.1:8000", server.base_url)
        env = {**os.environ, "DASHSCOPE_API_KEY": KEY, "PYTHONWARNINGS": "ignore"}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900
        )
    assert done.returncode == 0, done.stderr
    status, printed = done.stdout.split("\n", 1)
    assert status == "completed", done.stdout
    answer = json.loads(printed)
    assert answer["role"] == "assistant", done.stdout
    # What a 135M model says is its own business; that it says something (a run never
    # ends with an empty reply) and that it is on top of the thread is ours.
    text = "".join(p["text"]["value"] for p in answer["content"] if p["type"] == "text")
    assert text.strip(), done.stdout
