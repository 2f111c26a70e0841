"""CPU-bound built-in tools run off the event loop, under a wall-time limit.

One calculator call of 80 factors 9999**9999 (879 characters, under the 1000-character
limit) used to be evaluated on the event loop: for 11 to 23 seconds /healthz and every
tenant waited. Now it runs in a worker process that is killed at the limit: the server
goes on answering, another tenant's calculator call is served meanwhile, and the slow run
ends with an answer, its tool output saying the computation was stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.conftest import dedicated_server, sdk_at, workspace_key
from tests.runs.helpers import TERMINAL, ok
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer

PATHOLOGICAL = "*".join(["9999**9999"] * 80)
LIMIT_S = 4  # the tool's wall-time limit here; the expression needs 11 s or more of CPU
# A healthy server answers in milliseconds, the broken one after 11 s or more; the bound
# sits far from both, so a loaded 2-core machine does not flake it.
PROMPT_S = 2.0


@pytest.fixture(scope="module")
def limited_server(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    with dedicated_server(
        "sqlite",
        tmp_path_factory.mktemp("tool-offload"),
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
        ASSISTD_TOOL_WALL_S=str(LIMIT_S),
        ASSISTD_TOOL_WORKERS="2",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for all polling: making an httpx client can take a third of a second."""
    with httpx.Client(timeout=60) as client:
        yield client


@dataclass
class Tenant:
    http: httpx.Client
    key: str
    thread_id: str = ""
    assistant_id: str = ""
    latencies: list[float] = field(default_factory=list)

    def get(self, server: RunningServer, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        started = time.monotonic()
        response = self.http.get(f"{server.dashscope_url}{path}", headers=headers)
        self.latencies.append(time.monotonic() - started)
        assert response.status_code == 200, response.text
        return response.json()


def _calculator_tenant(
    http: httpx.Client, server: RunningServer, model: str, question: str
) -> Tenant:
    tenant = Tenant(http, workspace_key(server)[1])
    with sdk_at(server, tenant.key):
        assistant = ok(Assistants.create(model=model, tools=[{"type": "calculator"}]))
        thread = ok(Threads.create(messages=[{"role": "user", "content": question}]))
    tenant.assistant_id, tenant.thread_id = assistant.id, thread.id
    return tenant


def _start_run(server: RunningServer, tenant: Tenant) -> str:
    with sdk_at(server, tenant.key):
        return str(ok(Runs.create(tenant.thread_id, assistant_id=tenant.assistant_id)).id)


def _healthz_s(http: httpx.Client, server: RunningServer) -> float:
    started = time.monotonic()
    assert http.get(f"{server.base_url}/healthz").status_code == 200
    return time.monotonic() - started


def _wait_for_tool_step(server: RunningServer, tenant: Tenant, run_id: str) -> None:
    """Until the run's calculator call is being carried out."""
    deadline = time.monotonic() + 30
    path = f"/threads/{tenant.thread_id}/runs/{run_id}/steps"
    while not any(s["type"] == "tool_calls" for s in tenant.get(server, path)["data"]):
        assert time.monotonic() < deadline, "the model never called the calculator"
        time.sleep(0.05)


def _calculator_outputs(server: RunningServer, tenant: Tenant, run_id: str) -> list[str]:
    path = f"/threads/{tenant.thread_id}/runs/{run_id}/steps?order=asc"
    steps = tenant.get(server, path)["data"]
    return [
        str(call["calculator"]["output"])
        for step in steps
        if step["type"] == "tool_calls"
        for call in step["step_details"]["tool_calls"]
    ]


def test_a_slow_calculation_stalls_neither_the_server_nor_other_tenants(
    limited_server: RunningServer, fake_model: FakeModel, http: httpx.Client
) -> None:
    server = limited_server
    assert len(PATHOLOGICAL) < 1000
    slow_model = fake_model.new_model(
        ToolCalls([("calculator", {"expression": PATHOLOGICAL})]), Reply("Too big to compute.")
    )
    quick_model = fake_model.new_model(
        ToolCalls([("calculator", {"expression": "6 * 7"})]), Reply("It is 42.")
    )
    slow = _calculator_tenant(http, server, slow_model, "Multiply these huge powers.")
    quick = _calculator_tenant(http, server, quick_model, "What is 6 times 7?")

    slow_run = _start_run(server, slow)
    _wait_for_tool_step(server, slow, slow_run)
    quick_run = _start_run(server, quick)
    health: list[float] = []
    quick_done_while_slow_ran = False
    deadline = time.monotonic() + 120
    while True:
        health.append(_healthz_s(http, server))
        slow_status = slow.get(server, f"/threads/{slow.thread_id}/runs/{slow_run}")["status"]
        if slow_status in TERMINAL:
            break
        quick_status = quick.get(server, f"/threads/{quick.thread_id}/runs/{quick_run}")["status"]
        quick_done_while_slow_ran |= quick_status == "completed"
        assert time.monotonic() < deadline, f"the slow run stayed {slow_status}"
        time.sleep(0.05)

    assert max(slow.latencies + quick.latencies) < PROMPT_S, (slow.latencies, quick.latencies)
    assert max(health) < PROMPT_S, health
    assert len(health) >= 10, health  # polled all through the slow call
    assert quick_done_while_slow_ran
    assert _calculator_outputs(server, quick, quick_run) == ["42"]

    assert slow_status == "completed"
    [stopped] = _calculator_outputs(server, slow, slow_run)
    assert "stopped" in stopped and f"longer than {LIMIT_S} s" in stopped, stopped
    told = [m for m in fake_model.requests(slow_model)[-1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in told] == [stopped]
    with sdk_at(server, slow.key):
        reply = ok(Messages.list(slow.thread_id)).data[0]
    assert reply.run_id == slow_run
    assert reply.content[0].text.value == "Too big to compute."


def test_the_calculator_works_again_after_a_stopped_call(
    limited_server: RunningServer, fake_model: FakeModel, http: httpx.Client
) -> None:
    """The killed worker is replaced: the same run's next call is answered."""
    model = fake_model.new_model(
        ToolCalls([("calculator", {"expression": PATHOLOGICAL})]),
        ToolCalls([("calculator", {"expression": "2**10"})]),
        Reply("Done."),
    )
    tenant = _calculator_tenant(http, server := limited_server, model, "Try both.")
    run_id = _start_run(server, tenant)
    deadline = time.monotonic() + 120
    while (
        status := tenant.get(server, f"/threads/{tenant.thread_id}/runs/{run_id}")["status"]
    ) not in TERMINAL:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status == "completed"
    stopped, answered = _calculator_outputs(server, tenant, run_id)
    assert "stopped" in stopped
    assert answered == "1024"
