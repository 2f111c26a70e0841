"""Helpers of the OpenAI-surface tests: the DashScope surface's runs (the /v1 runs are
built elsewhere) over plain HTTP, for the tests that need a run on a thread."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import RunningServer

WAITING = ("requires_action", "completed", "failed", "cancelled", "expired")


def dashscope(server: RunningServer, key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30)


def start_run(server: RunningServer, key: str, thread_id: str, assistant_id: str) -> str:
    with dashscope(server, key) as ds:
        made = ds.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id})
    assert made.status_code == 200, made.text
    run_id: str = made.json()["id"]
    return run_id


def settle(server: RunningServer, key: str, thread_id: str, run_id: str) -> dict[str, Any]:
    """Polls the run (bounded) until it waits for tool outputs or has ended."""
    deadline = time.monotonic() + 60
    with dashscope(server, key) as ds:
        while True:
            run: dict[str, Any] = ds.get(f"/threads/{thread_id}/runs/{run_id}").json()
            if run["status"] in WAITING:
                return run
            assert time.monotonic() < deadline, f"run stayed {run['status']}"
            time.sleep(0.05)


OPENAPI_DOCUMENT = "openai-assistants-openapi.json"


def openapi_document_path() -> Path:
    """The Assistants, vector-store and files part of OpenAI's published OpenAPI document
    (MIT-licensed, from the openai-openapi repository), kept with the tests so they run
    on any clean checkout."""
    return Path(__file__).parent / "data" / OPENAPI_DOCUMENT
