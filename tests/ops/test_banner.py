"""What `assistd serve` tells the operator at start: the version, where the data lives,
where to connect and where each model name goes (no credential shown); a warning for an
ASSISTD_* variable that no setting reads and for a model endpoint that does not answer.
Neither warning stops the server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

import assistd
from tests.ops.conftest import server_output
from tests.support.fake_model import FakeModel
from tests.support.server import RunningServer, free_port, run_server

UPSTREAM_KEY = "sk-upstream-not-shown-0123456789"


def _output_with(server: RunningServer, text: str, timeout_s: float = 30) -> str:
    """The server's output once it contains `text` (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while text not in (seen := server_output(server)):
        assert time.monotonic() < deadline, f"{text!r} never appeared in:\n{seen}"
        time.sleep(0.2)
    return seen


def test_the_banner_and_the_start_warnings(tmp_path: Path, fake_model: FakeModel) -> None:
    reachable = fake_model.base_url.replace("http://", "http://probe:probe-pw@")
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    routes = {
        "qwen-max": {"base_url": reachable, "api_key": UPSTREAM_KEY, "upstream_model": "qwen"},
        "gone": {"base_url": dead, "api_key_env": "ASSISTD_GONE_KEY"},
    }
    env = {
        "ASSISTD_MODELS": json.dumps(routes),
        "ASSISTD_OPENAI_BASEURL": fake_model.base_url,  # a typo of ASSISTD_OPENAI_BASE_URL
        "ASSISTD_GONE_KEY": UPSTREAM_KEY,  # named by a route: no warning
    }
    with run_server(tmp_path / "data", **env) as server:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
        seen = _output_with(server, "is not reachable")

    lines = seen.splitlines()
    assert f"assistd {assistd.__version__}" in lines, seen
    assert f"  storage: SQLite database {server.data_dir.resolve()}/assistd.db" in lines, seen
    assert f"  listening on {server.base_url} (DashScope API at {server.dashscope_url})" in lines
    masked = fake_model.base_url.replace("http://", "http://***@")
    assert f"  model qwen-max: OpenAI-compatible endpoint {masked}, as qwen" in lines, seen
    assert f"  model gone: OpenAI-compatible endpoint {dead}" in lines, seen
    assert "  other model names: the local model (SmolLM2-135M)" in lines, seen
    for secret in ("probe-pw", UPSTREAM_KEY, server.admin_key):
        assert secret not in seen

    warned = [line for line in lines if line.startswith("Warning: ")]
    assert warned == [
        "Warning: ASSISTD_OPENAI_BASEURL is not an assistd setting and is ignored "
        "(did you mean ASSISTD_OPENAI_BASE_URL?)"
    ], seen
    unreachable = [line for line in lines if "is not reachable" in line]
    assert len(unreachable) == 1, seen
    assert dead in unreachable[0] and "gone" in unreachable[0], seen
    assert "connection refused" in unreachable[0], seen
