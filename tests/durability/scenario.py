"""What the durability test asks of the cluster: runs of three kinds, streamed or polled,
each answered by a deterministic model, and the client side of each run (the SSE legs it
read, the outputs it submitted).

A run's task is in its user message, `task <kind> <tag>`; the model answers from the
request alone, so a model turn started again after a takeover gets the same answer:
- plain: a paced reply;
- function: a call of `get_weather` (the run waits for the client's output), then, once
  the output is in, a paced reply;
- code: a `code_interpreter` call that waits half a second and prints n*n (the server
  runs it), then a paced reply.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.fake_model import Reply, ToolCalls, Turn

MODEL = "chaos"
KINDS = ("plain", "plain", "function", "function", "code")
WORDS = 40
RATE = 20.0  # words a second: a reply streams for about 2 s, long enough to be cut
WEATHER = {
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
TOOLS = [WEATHER, {"type": "code_interpreter"}]
FINAL = {"thread.run.completed", "thread.run.failed", "thread.run.cancelled",
         "thread.run.expired", "thread.run.requires_action"}  # fmt: skip
ENDED = ("completed", "failed", "cancelled", "expired")
TASK = re.compile(r"task (plain|function|code) (t\d+\.\d+) n=(\d+)")


@dataclass(frozen=True)
class Plan:
    """One run: the thread it belongs to, its turn there, its kind and how it is read."""

    index: int
    thread: int
    turn: int
    kind: str
    streamed: bool

    @property
    def tag(self) -> str:
        return f"t{self.thread:02d}.{self.turn}"

    @property
    def n(self) -> int:
        """The code run's number: n*n never appears in `print(n * n)` itself."""
        return 11 + self.index

    @property
    def question(self) -> str:
        return f"task {self.kind} {self.tag} n={self.n}"

    @property
    def answer(self) -> str:
        return _answer("reply" if self.kind == "plain" else "done", self.tag)

    @property
    def cut_after(self) -> int:
        """Every third streamed run's client hangs up after 3-30 events and resumes."""
        return 3 + self.index * 7 % 28 if self.index % 3 == 0 else 0

    @property
    def output(self) -> str:
        """What the client submits for its function call."""
        return f"sunny in {self.tag}"


def plans(threads: int, turns: int) -> list[Plan]:
    found = []
    for thread in range(threads):
        for turn in range(1, turns + 1):
            i = len(found)
            found.append(Plan(i, thread, turn, KINDS[i % len(KINDS)], streamed=i % 2 == 0))
    return found


def _answer(head: str, tag: str) -> str:
    return f"{head} {tag}: " + " ".join(f"w{i}" for i in range(WORDS))


def respond(body: dict[str, Any]) -> Turn:
    """The model: a function of the request only."""
    messages = body.get("messages") or []
    user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    found = TASK.search(str(user.get("content")))
    if found is None:
        return Reply("no task")
    kind, tag, n = found.group(1), found.group(2), found.group(3)
    if messages and messages[-1].get("role") == "tool":
        return Reply(_answer("done", tag), tokens_per_s=RATE)
    if kind == "function":
        return ToolCalls([("get_weather", {"city": tag})], ids=(f"call_{tag}",))
    if kind == "code":
        code = f"import time\ntime.sleep(0.5)\nprint({n} * {n})"  # a kill may land mid-call
        return ToolCalls([("code_interpreter", {"code": code})], ids=(f"call_{tag}",))
    return Reply(_answer("reply", tag), tokens_per_s=RATE)


# ---- the client side --------------------------------------------------------------------


@dataclass
class Leg:
    """One SSE response: the (event, data) pairs in order, whether `[DONE]` closed it.
    A resumed leg was cut by its client on purpose and followed again, on another
    replica, from the last event id it saw; `ids` are the ids of its events, one an
    event, None for an event sent without one."""

    replica: str
    events: list[tuple[str, Any]] = field(default_factory=list)
    done: bool = False
    error: str = ""
    ids: list[int | None] = field(default_factory=list)
    resumed: bool = False

    @property
    def last_id(self) -> int | None:
        return next((i for i in reversed(self.ids) if i is not None), None)


@dataclass
class Outcome:
    plan: Plan
    thread_id: str
    run_id: str = ""
    status: str = ""
    submitted: int = 0  # tool output submissions
    legs: list[Leg] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


class Api:
    """The DashScope surface over the replicas, one keep-alive client each; calls go
    round the replicas so each run touches more than one."""

    def __init__(self, replicas: list[str], key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        self.clients = [
            httpx.AsyncClient(base_url=f"{r}/api/v1", headers=headers, timeout=60) for r in replicas
        ]
        self._next = 0

    def pick(self) -> httpx.AsyncClient:
        self._next += 1
        return self.clients[self._next % len(self.clients)]

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.pick().request(method, path, json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    async def stream(self, path: str, body: dict[str, Any], cut_after: int = 0) -> Leg:
        """Reads one SSE response whole. A broken one is recorded in the leg (the client
        then polls the run, as a real one would). With `cut_after`, the client asks for
        event ids, hangs up after that many events and follows the run again from the
        last id it saw, on the next replica (`GET .../runs/{run_id}/events`)."""
        client = self.pick()
        leg = Leg(str(client.base_url))
        body = {**body, "stream": True}
        try:
            if not cut_after:
                await _read(client.stream("POST", path, json=body), leg)
                return leg
            await _read(client.stream("POST", f"{path}?event_ids=true", json=body), leg, cut_after)
            if not leg.done and leg.last_id is not None:
                leg.resumed = True
                resume = f"{path.split('/runs')[0]}/runs/{_run_id(leg)}/events"
                headers = {"Last-Event-ID": str(leg.last_id)}
                await _read(self.pick().stream("GET", resume, headers=headers), leg)
        except httpx.HTTPError as exc:
            leg.error = f"{type(exc).__name__}: {exc}"
        return leg

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


async def _read(
    request: AbstractAsyncContextManager[httpx.Response], leg: Leg, stop_after: int = 0
) -> None:
    """Adds the response's events to the leg; hangs up once it holds `stop_after`."""
    event, seq = "", None
    async with request as response:
        if response.status_code != 200:
            leg.error = f"{response.status_code} {(await response.aread())[:300]!r}"
            return
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                seq = int(line[3:])
            elif line.startswith("event:"):
                event = line[6:]
            elif line.startswith("data:"):
                if line[5:].strip() == "[DONE]":
                    leg.done = True
                else:
                    leg.events.append((event, json.loads(line[5:])))
                    leg.ids.append(seq)
                    seq = None
                    if len(leg.events) == stop_after:
                        return


async def setup(api: Api, count: int) -> tuple[str, list[str]]:
    """The assistant and `count` threads."""
    body = {"model": MODEL, "instructions": "Do the task.", "tools": TOOLS}
    assistant = await api.call("POST", "/assistants", body)
    threads = [(await api.call("POST", "/threads", {}))["id"] for _ in range(count)]
    return assistant["id"], threads


async def run_one(api: Api, assistant_id: str, out: Outcome, timeout_s: float) -> None:
    started = time.monotonic()
    try:
        await asyncio.wait_for(_run(api, assistant_id, out), timeout_s)
    except TimeoutError:
        out.error = f"no end within {timeout_s:g} s (last status {out.status or 'unknown'})"
    except (RuntimeError, httpx.HTTPError, json.JSONDecodeError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    out.seconds = time.monotonic() - started


async def _run(api: Api, assistant_id: str, out: Outcome) -> None:
    thread = f"/threads/{out.thread_id}"
    await api.call("POST", f"{thread}/messages", {"role": "user", "content": out.plan.question})
    body = {"assistant_id": assistant_id}
    if out.plan.streamed:
        before = await _newest_run(api, thread)
        leg = await api.stream(f"{thread}/runs", body, out.plan.cut_after)
        out.legs.append(leg)
        # A stream broken before its first event still made the run, most likely: a
        # client finds it among the thread's runs and polls it.
        out.run_id = _run_id(leg) or await _newest_run(api, thread)
        if out.run_id == before:
            raise RuntimeError(f"the stream made no run: {leg.error}")
    else:
        out.run_id = (await api.call("POST", f"{thread}/runs", body))["id"]
    run = await _settle(api, out)
    while run["status"] == "requires_action":
        calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        outputs = {"tool_outputs": [{"tool_call_id": c["id"], "output": out.plan.output}
                                    for c in calls]}  # fmt: skip
        out.submitted += 1
        path = f"{thread}/runs/{out.run_id}/submit_tool_outputs"
        if out.plan.streamed:
            out.legs.append(await api.stream(path, outputs))
        else:
            await api.call("POST", path, outputs)
        run = await _settle(api, out)


def _run_id(leg: Leg) -> str:
    for name, data in leg.events:
        if name.startswith("thread.run.") and isinstance(data, dict) and "id" in data:
            return str(data["id"])
    return ""


async def _newest_run(api: Api, thread: str) -> str:
    runs = (await api.call("GET", f"{thread}/runs?limit=1"))["data"]
    return str(runs[0]["id"]) if runs else ""


async def _settle(api: Api, out: Outcome) -> dict[str, Any]:
    """Polls the run (round the replicas) until it waits for the client or has ended."""
    while True:
        run: dict[str, Any] = await api.call("GET", f"/threads/{out.thread_id}/runs/{out.run_id}")
        out.status = run["status"]
        if out.status == "requires_action" or out.status in ENDED:
            return run
        await asyncio.sleep(0.1)
