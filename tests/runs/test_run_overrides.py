"""What a run overrides of its assistant (model, instructions, additional_instructions,
tools, metadata, sampling), checked where it matters: in the request the model got."""

from __future__ import annotations

from typing import Any

from dashscope import Assistants, Runs, Threads

from tests.runs.helpers import BIG_ADD, CLOCK, WEATHER, ok, settle
from tests.support.fake_model import FakeModel, Reply


def _offered(request: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


def _system(request: dict[str, Any]) -> str:
    first = request["messages"][0]
    assert first["role"] == "system", request["messages"]
    return str(first["content"])


def test_every_override_reaches_the_model(ds: str, fake_model: FakeModel) -> None:
    assistant_model = fake_model.new_model()
    run_model = fake_model.new_model(Reply("overridden"))
    assistant = ok(
        Assistants.create(
            model=assistant_model,
            instructions="ASSISTANT-INSTRUCTIONS",
            tools=[WEATHER],
            temperature=0.9,
            top_p=0.1,
            metadata={"a": "1"},
        )
    )
    thread = ok(Threads.create(messages=[{"role": "user", "content": "go"}]))
    run = ok(
        Runs.create(
            thread.id,
            assistant_id=assistant.id,
            model=run_model,
            instructions="RUN-INSTRUCTIONS",
            additional_instructions="RUN-ADDITIONAL",
            tools=[CLOCK, BIG_ADD],
            metadata={"r": "2"},
            temperature=0.25,
            top_p=0.5,
            top_k=7,
            max_tokens=77,
        )
    )
    assert run.model == run_model
    assert run.metadata == {"r": "2"}
    assert [t["function"]["name"] for t in run.tools] == ["get_time", "big_add"]
    assert (run.temperature, run.top_p, run.top_k, run.max_tokens) == (0.25, 0.5, 7, 77)
    assert "RUN-INSTRUCTIONS" in run.instructions and "RUN-ADDITIONAL" in run.instructions
    assert settle(thread.id, run.id).status == "completed"

    assert fake_model.requests(assistant_model) == []
    [request] = fake_model.requests(run_model)
    assert request["model"] == run_model
    system = _system(request)
    assert system.index("RUN-INSTRUCTIONS") < system.index("RUN-ADDITIONAL")
    assert "ASSISTANT-INSTRUCTIONS" not in system
    assert _offered(request) == ["get_time", "big_add"]
    assert request["tools"][1] == BIG_ADD  # the definition as the client gave it
    assert (request["temperature"], request["top_p"], request["max_tokens"]) == (0.25, 0.5, 77)
    assert request["top_k"] == 7


def test_additional_instructions_keep_the_assistants(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("fine"))
    assistant = ok(
        Assistants.create(
            model=model, instructions="BASE", tools=[WEATHER], temperature=0.3, max_tokens=50
        )
    )
    thread = ok(Threads.create(messages=[{"role": "user", "content": "go"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id, additional_instructions="EXTRA"))
    assert run.model == model
    assert settle(thread.id, run.id).status == "completed"
    [request] = fake_model.requests(model)
    system = _system(request)
    assert system.index("BASE") < system.index("EXTRA")
    assert _offered(request) == ["get_weather"]
    # The assistant's sampling applies when the run sets none.
    assert (request["temperature"], request["max_tokens"]) == (0.3, 50)
    assert "top_p" not in request and "top_k" not in request


def test_no_instructions_no_tools_no_sampling(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("plain"))
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "just this"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert settle(thread.id, run.id).status == "completed"
    [request] = fake_model.requests(model)
    assert request["messages"] == [{"role": "user", "content": "just this"}]
    assert "tools" not in request
    assert "temperature" not in request and "top_p" not in request and "top_k" not in request


def test_bad_overrides_are_400(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model()
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create())
    for kwargs, field in (
        ({"temperature": 5.0}, "temperature"),
        ({"top_p": 2.0}, "top_p"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"tools": [{"type": "function"}]}, "tools"),
    ):
        bad = Runs.create(thread.id, assistant_id=assistant.id, **kwargs)
        assert bad.status_code == 400, (kwargs, bad)
        assert bad.code == "InvalidParameter" and field in bad.message, (kwargs, bad.message)
    assert fake_model.requests(model) == []
    assert ok(Runs.list(thread.id)).data == []
