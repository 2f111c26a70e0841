"""The OpenAI surface's page runs as written, and its OpenAPI document is its own."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.api.openai.conftest import openai_url
from tests.support.server import RunningServer

PAGE = Path(__file__).resolve().parents[3] / "docs" / "openai.md"


def test_the_page_example_runs(server: RunningServer, workspace: tuple[str, str]) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    code = code.replace("http://127.0.0.1:8000/v1", openai_url(server))
    code = code.replace("sk-assistd-...", workspace[1])
    scope: dict[str, object] = {}
    exec(compile(code, str(PAGE), "exec"), scope)
    assert getattr(scope["assistant"], "name", None) == "Helper"


def test_the_openapi_document(server: RunningServer) -> None:
    answer = httpx.get(f"{openai_url(server)}/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert all(path.startswith("/v1/") for path in document["paths"])
    for path in ("/v1/assistants", "/v1/threads/{thread_id}/messages", "/v1/files"):
        assert path in document["paths"], path
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["message", "type", "param", "code"]
