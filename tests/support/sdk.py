"""Helpers for driving the server through the real `dashscope` SDK (and raw HTTP where the
SDK cannot send the input a test needs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dashscope
import httpx

from tests.support.server import RunningServer


def as_json(obj: Any) -> Any:
    """What seed flow F1 does with every returned object: `json.dumps` with
    `default=lambda o: o.__dict__`. Returns the parsed result so tests can look inside."""
    text = json.dumps(
        obj, ensure_ascii=False, default=lambda o: o.__dict__, sort_keys=True, indent=4
    )
    return json.loads(text)


def assert_ok(obj: Any) -> None:
    assert obj.status_code == 200, as_json(obj)


def assert_error(obj: Any, status: int, code: str, *words: str) -> None:
    """The flat DashScope envelope as the SDK surfaces it: the usual result class carrying
    `status_code`, `code`, `message` and `request_id`, with `message` naming `words`."""
    assert obj.status_code == status, as_json(obj)
    assert obj.code == code, as_json(obj)
    assert isinstance(obj.request_id, str) and len(obj.request_id) >= 16, as_json(obj)
    for word in words:
        assert word in obj.message, (word, obj.message)


def upload(path: Path, description: str | None = None, **kwargs: Any) -> str:
    """Uploads with `dashscope.Files` and returns the new file id. `purpose="assistants"`
    keeps the SDK from checking that the file is fine-tuning JSONL."""
    result = dashscope.Files.upload(
        str(path), purpose="assistants", description=description, **kwargs
    )
    assert result.status_code == 200, result
    uploaded = result.output["uploaded_files"]
    assert len(uploaded) == 1 and uploaded[0]["name"] == path.name, result.output
    assert result.output["failed_uploads"] == []
    file_id: str = uploaded[0]["file_id"]
    return file_id


def raw_client(server: RunningServer, key: str | None = None) -> httpx.Client:
    """An HTTP client on the DashScope base URL holding `key` (default: the SDK's key)."""
    headers = {"Authorization": f"Bearer {key or dashscope.api_key}"}
    return httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30)


def assert_raw_error(response: httpx.Response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"request_id", "code", "message"}, body
    assert body["code"] == code, body
    for word in words:
        assert word in body["message"], (word, body["message"])
