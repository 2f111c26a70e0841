"""Helpers of the run tests: tool definitions, stream collection, bounded polling and a
raw SSE reader for the bytes the SDK hides."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import dashscope
import httpx
from dashscope import Runs

from tests.support.sdk import as_json
from tests.support.server import RunningServer

Event = tuple[str, Any]

# Statuses after which a run never changes again.
TERMINAL = ("completed", "failed", "cancelled", "expired")


def function_tool(name: str, description: str = "", **properties: str) -> dict[str, Any]:
    """A function tool whose parameters are required properties of the given JSON types."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description or f"The {name} function.",
            "parameters": {
                "type": "object",
                "properties": {key: {"type": kind} for key, kind in properties.items()},
                "required": list(properties),
            },
        },
    }


BIG_ADD = function_tool("big_add", "Adds two integers.", left="integer", right="integer")
WEATHER = function_tool("get_weather", "The weather in a city.", city="string")
CLOCK = function_tool("get_time", "The time in a time zone.", zone="string")


def ok(result: Any) -> Any:
    """The result itself, after checking it is a success (as the guides' users check)."""
    assert result.status_code == 200, as_json(result)
    return result


def collect(stream: Iterable[Event]) -> list[Event]:
    return list(stream)


def names(events: list[Event]) -> list[str]:
    return [name for name, _ in events]


def delta_text(events: list[Event]) -> str:
    return "".join(
        data.delta.content.text.value for name, data in events if name == "thread.message.delta"
    )


def last(events: list[Event], name: str) -> Any:
    found = [data for event, data in events if event == name]
    assert found, (name, names(events))
    return found[-1]


def wait_for(thread_id: str, run_id: str, *statuses: str, timeout_s: float = 30) -> Any:
    """Polls Runs.retrieve until the run's status is one of `statuses` (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = ok(Runs.retrieve(run_id, thread_id=thread_id))
        if run.status in statuses:
            return run
        assert time.monotonic() < deadline, f"run stayed {run.status}, wanted {statuses}"
        time.sleep(0.05)


def settle(thread_id: str, run_id: str, timeout_s: float = 60) -> Any:
    """What Runs.wait returns (the run once it is requires_action or ended), polled faster
    than its one GET a second; for tests whose subject is not Runs.wait itself."""
    return wait_for(thread_id, run_id, "requires_action", *TERMINAL, timeout_s=timeout_s)


def wait_done(thread_id: str, run_id: str, timeout_s: float = 60) -> Any:
    """Runs.wait with a bound, so a run that never ends fails the test instead of hanging."""
    run = Runs.wait(run_id, thread_id=thread_id, timeout_seconds=timeout_s)
    assert run.status_code == 200, as_json(run)
    return run


def assert_full_usage(usage: Any) -> None:
    """A step's usage: the SDK reads all five counters as attributes."""
    assert usage is not None
    for counter in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(getattr(usage, counter), int), (counter, usage)
    assert usage.input_tokens == usage.prompt_tokens
    assert usage.output_tokens == usage.completion_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


# ---- raw SSE ------------------------------------------------------------------------


@dataclass
class Frame:
    id: str | None
    event: str | None
    data: str


@dataclass
class RawStream:
    status: int
    content_type: str
    lines: list[str] = field(default_factory=list)

    def frames(self) -> list[Frame]:
        """Every `data:` line with the `id:` and `event:` lines before it."""
        found: list[Frame] = []
        current_id: str | None = None
        current_event: str | None = None
        for line in self.lines:
            if line.startswith("id:"):
                current_id = line[3:]
            elif line.startswith("event:"):
                current_event = line[6:]
            elif line.startswith("data:"):
                found.append(Frame(current_id, current_event, line[5:]))
                current_id = None  # an id: line belongs to one event
        return found

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        return [(str(f.event), json.loads(f.data)) for f in self.frames() if f.data != "[DONE]"]


def sse_lines(response: httpx.Response) -> list[str]:
    return list(response.iter_lines())


def raw_stream(server: RunningServer, path: str, body: dict[str, Any]) -> RawStream:
    """POSTs `body` to `path` (relative to /api/v1) and reads the whole SSE body."""
    headers = {"Authorization": f"Bearer {dashscope.api_key}"}
    with (
        httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=60) as client,
        client.stream("POST", path, json=body) as response,
    ):
        return RawStream(
            response.status_code, response.headers.get("content-type", ""), sse_lines(response)
        )
