"""Tenancy of the /v1 run verbs, as test_tenancy.py checks the object verbs: a plain key
of workspace B gets, for each of workspace A's runs, steps, threads and assistants,
exactly the answer for an id that never existed, and A's run is as it was after."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.api.openai.conftest import sdk
from tests.conftest import make_workspace
from tests.support.server import RunningServer

KINDS = ("asst", "thread", "run", "step")


@dataclass
class World:
    a: dict[str, str]
    b: dict[str, str]
    ghost: dict[str, str]
    key_a: str
    key_b: str
    before: dict[str, Any]


def populate(client: openai.OpenAI, label: str) -> dict[str, str]:
    assistant = client.beta.assistants.create(model="m", name=f"{label}-assistant")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": label}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data
    return {"asst": assistant.id, "thread": thread.id, "run": run.id, "step": step.id}


def snapshot(client: openai.OpenAI, ids: dict[str, str]) -> dict[str, Any]:
    runs = client.beta.threads.runs
    return {
        "run": runs.retrieve(ids["run"], thread_id=ids["thread"]).model_dump(),
        "runs": [r.id for r in runs.list(thread_id=ids["thread"])],
        "steps": [s.model_dump() for s in runs.steps.list(ids["run"], thread_id=ids["thread"])],
        "messages": [m.id for m in client.beta.threads.messages.list(ids["thread"])],
    }


@pytest.fixture(scope="module")
def world(server: RunningServer) -> Iterator[World]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        _, key_a = make_workspace(admin, "oai-runs-a")
        _, key_b = make_workspace(admin, "oai-runs-b")
    with sdk(server, key_a) as a_client, sdk(server, key_b) as b_client:
        a = populate(a_client, "A")
        b = populate(b_client, "B")
        before = snapshot(a_client, a)
    ghost = {kind: f"{a[kind].split('_')[0]}_{secrets.token_hex(12)}" for kind in KINDS}
    yield World(a, b, ghost, key_a, key_b, before)


def outcome(call: Callable[[], Any], ids: dict[str, str]) -> tuple[Any, ...]:
    try:
        result = call()
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        message = str(body.get("message"))
        for kind in KINDS:
            message = message.replace(ids[kind], f"<{kind}>")
        return exc.status_code, body.get("type"), body.get("param"), body.get("code"), message
    raise AssertionError(f"the call was not refused: {result!r}")


Verb = Callable[[openai.OpenAI, dict[str, str], dict[str, str]], Any]


def _runs(c: openai.OpenAI) -> Any:
    return c.beta.threads.runs


VERBS: dict[str, tuple[int, Verb]] = {
    "runs.create": (404, lambda c, t, o: _runs(c).create(t["thread"], assistant_id=o["asst"])),
    "runs.create(B's thread, A's assistant)": (
        404, lambda c, t, o: _runs(c).create(o["thread"], assistant_id=t["asst"])),
    "runs.stream(B's thread, A's assistant)": (
        404, lambda c, t, o: _runs(c).create(o["thread"], assistant_id=t["asst"], stream=True)),
    "threads.create_and_run(A's assistant)": (
        404, lambda c, t, o: c.beta.threads.create_and_run(assistant_id=t["asst"])),
    "runs.list": (404, lambda c, t, o: _runs(c).list(t["thread"])),
    "runs.list(B's thread, after=A's run)": (
        400, lambda c, t, o: _runs(c).list(o["thread"], after=t["run"])),
    "runs.retrieve": (404, lambda c, t, o: _runs(c).retrieve(t["run"], thread_id=t["thread"])),
    "runs.retrieve(B's thread)": (
        404, lambda c, t, o: _runs(c).retrieve(t["run"], thread_id=o["thread"])),
    "runs.update": (404, lambda c, t, o: _runs(c).update(
        t["run"], thread_id=t["thread"], metadata={"owner": "B"})),
    "runs.update(B's thread)": (404, lambda c, t, o: _runs(c).update(
        t["run"], thread_id=o["thread"], metadata={"owner": "B"})),
    "runs.cancel": (404, lambda c, t, o: _runs(c).cancel(t["run"], thread_id=t["thread"])),
    "runs.cancel(B's thread)": (
        404, lambda c, t, o: _runs(c).cancel(t["run"], thread_id=o["thread"])),
    "runs.submit_tool_outputs": (404, lambda c, t, o: _runs(c).submit_tool_outputs(
        t["run"], thread_id=t["thread"], tool_outputs=[{"tool_call_id": "call_x", "output": "1"}])),
    "runs.steps.list": (404, lambda c, t, o: _runs(c).steps.list(t["run"], thread_id=t["thread"])),
    "runs.steps.list(B's thread)": (
        404, lambda c, t, o: _runs(c).steps.list(t["run"], thread_id=o["thread"])),
    "runs.steps.retrieve": (404, lambda c, t, o: _runs(c).steps.retrieve(
        t["step"], run_id=t["run"], thread_id=t["thread"])),
    "runs.steps.retrieve(B's run)": (404, lambda c, t, o: _runs(c).steps.retrieve(
        t["step"], run_id=o["run"], thread_id=o["thread"])),
}  # fmt: skip


@pytest.mark.parametrize("verb", list(VERBS))
def test_another_workspace_s_runs_are_runs_that_never_were(
    server: RunningServer, world: World, verb: str
) -> None:
    status, call = VERBS[verb]
    with sdk(server, world.key_b) as b_client:
        foreign = outcome(lambda: call(b_client, world.a, world.b), world.a)
        never = outcome(lambda: call(b_client, world.ghost, world.b), world.ghost)
    assert foreign == never, (verb, foreign, never)
    assert foreign[0] == status, (verb, foreign)


def test_a_s_runs_are_as_they_were(server: RunningServer, world: World) -> None:
    """Run last in this module (pytest keeps file order): after every verb above."""
    with sdk(server, world.key_a) as a_client:
        assert snapshot(a_client, world.a) == world.before
