"""Helpers of the operations tests: the server's log file, read back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.support.server import RunningServer


def server_log(server: RunningServer) -> str:
    """Everything the server printed so far (run_server writes it to data_dir)."""
    port = server.base_url.rsplit(":", 1)[1]
    return (server.data_dir / f"server-{port}.log").read_text(errors="replace")


def wait_for_log(server: RunningServer, found: Callable[[str], bool], timeout_s: float = 15) -> str:
    """The log once `found(log)` holds (lines are written as things happen: a request's
    line after its response went out), bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = server_log(server)
        if found(text):
            return text
        assert time.monotonic() < deadline, text[-4000:]
        time.sleep(0.05)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The lines of `text` that are JSON objects."""
    parsed: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed
