"""docs/models.md's TOML recipes load into Settings, and each route does what its recipe
says: a run on it reaches the endpoint under the upstream name, with the tools sent the
recipe's way (native `tools`, or prompted through `response_format`). The endpoints
themselves are the fake model here; only the base URLs are swapped."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistd.settings import ModelRoute, Settings, load_settings
from tests.support.fake_model import FakeModel, Reply
from tests.support.server import RunningServer, run_server

PAGE = Path(__file__).resolve().parents[2] / "docs" / "models.md"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def toml_blocks() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", PAGE.read_text(), flags=re.S)


def load_block(block: str, tmp_path: Path) -> Settings:
    config = tmp_path / "assistd.toml"
    config.write_text(block)
    return load_settings(config)


@pytest.fixture
def no_assistd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ASSISTD_")]:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_assistd_env")
def test_every_recipe_loads(tmp_path: Path) -> None:
    blocks = toml_blocks()
    assert len(blocks) >= 5  # the general example and the four recipes
    for block in blocks:
        settings = load_block(block, tmp_path)
        assert settings.models, block
        for name, route in settings.models.items():
            if route.backend == "openai_compat":
                assert route.base_url and route.base_url.endswith("/v1"), (name, block)


def recipe_routes(tmp_path: Path) -> dict[str, ModelRoute]:
    """Every named openai_compat route of every block, under a name of its own."""
    routes: dict[str, ModelRoute] = {}
    for index, block in enumerate(toml_blocks()):
        for name, route in load_block(block, tmp_path).models.items():
            if name != "*" and route.backend == "openai_compat":
                routes[f"recipe{index}-{name}"] = route
    return routes


@pytest.fixture(scope="module")
def recipes(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[tuple[RunningServer, dict[str, ModelRoute]]]:
    """A server with every recipe's routes pointed at the fake model: (server, routes)."""
    saved = {n: os.environ.pop(n) for n in list(os.environ) if n.startswith("ASSISTD_")}
    try:
        routes = recipe_routes(tmp_path_factory.mktemp("recipes"))
    finally:
        os.environ.update(saved)
    swapped = {
        name: {**route.model_dump(exclude_none=True), "base_url": fake_model.base_url}
        for name, route in routes.items()
    }
    with run_server(
        tmp_path_factory.mktemp("recipes-server"), ASSISTD_MODELS=json.dumps(swapped)
    ) as server:
        yield server, routes


def run_once(server: RunningServer, model: str) -> dict[str, Any]:
    """One run of `model` with a function tool, through the DashScope wire; the ended run."""
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30) as http:
        assistant = http.post("/assistants", json={"model": model, "tools": [TOOL]}).json()
        thread = http.post("/threads", json={"messages": [{"content": "Hello?"}]}).json()
        run = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]})
        assert run.status_code == 200, run.text
        deadline = time.monotonic() + 60
        while run.json()["status"] not in ("completed", "failed", "requires_action"):
            assert time.monotonic() < deadline, run.json()
            time.sleep(0.1)
            run = http.get(f"/threads/{thread['id']}/runs/{run.json()['id']}")
        ended: dict[str, Any] = run.json()
        return ended


def test_each_recipe_route_reaches_its_endpoint_as_described(
    recipes: tuple[RunningServer, dict[str, ModelRoute]], fake_model: FakeModel
) -> None:
    server, routes = recipes
    assert len(routes) >= 5
    for name, route in routes.items():
        upstream = route.upstream_model or name
        prompted = route.tool_calls == "prompted"
        answer = '{"type": "message", "content": "Hi."}' if prompted else "Hi."
        fake_model.script(upstream, Reply(answer))
        before = len(fake_model.requests(upstream))
        run = run_once(server, name)
        assert run["status"] == "completed", (name, run)
        sent = fake_model.requests(upstream)[before:]
        assert sent, f"{name}: nothing reached the endpoint as {upstream!r}"
        if prompted:
            assert "tools" not in sent[0] and "response_format" in sent[0], name
        else:
            assert sent[0]["tools"][0]["function"]["name"] == "get_weather", name
