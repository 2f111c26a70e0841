"""The README's painting assistant with a search and an image provider configured: its
configuration file, with fake providers at the addresses it names, and its example
program, unchanged but for the base URL, answer with search results in the steps and a
picture whose link opens without an API key. The model is scripted to search and draw."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.docs.test_readme import KEY, README, _python_blocks
from tests.runs.test_painting_assistant import IMAGE_LINK, NEEDS_SEARCH, RESULTS, searxng
from tests.support.fake_images import PNG, fake_images
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.listener import listener
from tests.support.server import run_server

pytestmark = NEEDS_SEARCH


def readme_config() -> str:
    (block,) = [
        b for b in re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
        if "[image]" in b and "[search]" in b
    ]  # fmt: skip
    return block


def test_the_readme_configuration_makes_the_painter_search_and_draw(tmp_path: Path) -> None:
    (example,) = _python_blocks()
    model = FakeModel().start()
    model.script(
        "qwen-max",
        ToolCalls([("quark_search", {"query": "ragdoll cat"})]),
        ToolCalls([("text_to_image", {"prompt": "a ragdoll cat"})]),
        Reply("Here is a ragdoll cat."),
    )
    with listener(searxng) as search, fake_images("a1111", "") as a1111:
        config = tmp_path / "assistd.toml"
        config.write_text(
            readme_config()
            .replace("http://127.0.0.1:8888", search.url)
            .replace("http://127.0.0.1:7860", a1111.base_url)
        )
        with run_server(
            tmp_path / "server", admin_key=KEY, args=["--config", str(config)],
            ASSISTD_OPENAI_BASE_URL=model.base_url,
        ) as server:  # fmt: skip
            script = example.replace("http://127.0.0.1:8000", server.base_url)
            env = {**os.environ, "DASHSCOPE_API_KEY": KEY, "PYTHONWARNINGS": "ignore"}
            done = subprocess.run(
                [sys.executable, "-c", script], env=env, capture_output=True, text=True,
                timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            status, printed = done.stdout.split("\n", 1)
            assert status == "completed", done.stdout
            answer = json.loads(printed)
            [text] = [p["text"]["value"] for p in answer["content"] if p["type"] == "text"]
            [link] = IMAGE_LINK.findall(text)
            opened = httpx.get(link, timeout=30)  # no API key
            assert opened.status_code == 200 and opened.content == PNG
            steps = httpx.get(
                f"{server.dashscope_url}/threads/{answer['thread_id']}/runs/{answer['run_id']}"
                "/steps?order=asc", headers={"Authorization": f"Bearer {KEY}"}, timeout=30,
            ).json()["data"]  # fmt: skip
            search_call = steps[0]["step_details"]["tool_calls"][0]
            found = json.loads(search_call["quark_search"]["output"])
            assert [r["url"] for r in found] == [r["url"] for r in RESULTS]
        assert [parse_qs(urlsplit(s.path).query)["q"] for s in search.seen] == [["ragdoll cat"]]
        assert len(a1111.calls("/sdapi/v1/txt2img")) == 1
    model.stop()
