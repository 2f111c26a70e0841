"""function_tool(): a typed Python function becomes a function tool definition, and
call_function() runs it with a tool call's arguments; last, both drive the seed F4 loop
through the real dashscope SDK."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import jsonschema
import pytest
from dashscope import Assistants, Runs, Threads

from assistd.tools.function import acall_function, as_text, call_function, function_tool
from tests.support.fake_model import FakeModel, Reply, ToolCalls

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tools.md"


def ok(result: Any) -> Any:
    assert result.status_code == 200, result
    return result


def wait_done(thread_id: str, run_id: str) -> Any:
    """Runs.wait with a bound: the run once it needs outputs or has ended."""
    return ok(Runs.wait(run_id, thread_id=thread_id, timeout_seconds=60))


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


def get_weather(
    city: str,
    days: int = 1,
    unit: Unit = Unit.CELSIUS,
    detail: Literal["short", "full"] = "short",
    near: list[str] | None = None,
) -> dict[str, Any]:
    """The weather forecast for a city.

    Covers today and the next days.

    Args:
        city: The city's name, e.g. "Paris".
        days: How many days to forecast,
            today included.
        unit (Unit): The temperature unit.
        detail: How much to say.

    Returns:
        The forecast.
    """
    return {"city": city, "days": days, "unit": unit.value, "detail": detail, "near": near}


def test_definition_from_signature_and_docstring() -> None:
    tool = function_tool(get_weather)
    assert tool["type"] == "function"
    function = tool["function"]
    assert function["name"] == "get_weather"
    assert function["description"] == "The weather forecast for a city."
    assert function["parameters"] == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'The city\'s name, e.g. "Paris".'},
            "days": {
                "type": "integer",
                "description": "How many days to forecast, today included.",
                "default": 1,
            },
            "unit": {
                "type": "string",
                "enum": ["celsius", "fahrenheit"],
                "description": "The temperature unit.",
                "default": "celsius",
            },
            "detail": {
                "type": "string",
                "enum": ["short", "full"],
                "description": "How much to say.",
                "default": "short",
            },
            "near": {
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    jsonschema.Draft202012Validator.check_schema(function["parameters"])
    assert json.loads(json.dumps(tool)) == tool  # plain JSON, ready for any SDK


def test_scalars_containers_and_optional() -> None:
    def f(
        a: float,
        b: bool,
        c: dict[str, int],
        d: Optional[int],  # noqa: UP045 - the old spelling is supported too
        e: list[list[float]],
        f: dict,  # type: ignore[type-arg]
        g: Literal[1, 2, 3],
        h: Literal["x", 1],
    ) -> None:
        """Everything."""

    props = function_tool(f)["function"]["parameters"]["properties"]
    assert props["a"] == {"type": "number"}
    assert props["b"] == {"type": "boolean"}
    assert props["c"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["d"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["e"] == {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
    assert props["f"] == {"type": "object"}
    assert props["g"] == {"type": "integer", "enum": [1, 2, 3]}
    assert props["h"] == {"enum": ["x", 1]}


def test_no_parameters_and_a_one_line_docstring() -> None:
    def now() -> str:
        """The current time."""
        return "12:00"

    tool = function_tool(now)["function"]
    assert tool["description"] == "The current time."
    assert tool["parameters"]["properties"] == {} and tool["parameters"]["required"] == []


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ("bytes", "parameter 'x' of bad() has an unsupported annotation"),
        ("dict[int, str]", "parameter 'x' of bad(): JSON object keys are strings"),
        ("int | str", "parameter 'x' of bad() has an unsupported annotation"),
        ("set[int]", "parameter 'x' of bad() has an unsupported annotation"),
        ("list[object]", "parameter 'x' of bad() has an unsupported annotation"),
    ],
)
def test_unsupported_annotations_name_the_parameter(annotation: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f'def bad(x: {annotation}) -> None:\n    """Bad."""\n', namespace)
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        function_tool(namespace["bad"])


def test_missing_annotation_docstring_and_variadics() -> None:
    def untyped(city, days: int) -> None:  # type: ignore[no-untyped-def]
        """Untyped."""

    with pytest.raises(TypeError, match=r"parameter 'city' of untyped\(\) has no type annotation"):
        function_tool(untyped)

    def undocumented(city: str) -> None:
        pass

    with pytest.raises(TypeError, match="has no docstring"):
        function_tool(undocumented)

    def variadic(*cities: str) -> None:
        """Variadic."""

    with pytest.raises(TypeError, match="parameter 'cities'"):
        function_tool(variadic)

    with pytest.raises(TypeError, match="not a valid tool name"):
        function_tool(lambda: None)


def test_call_function_parses_converts_and_renders() -> None:
    out = call_function(get_weather, '{"city": "Paris", "unit": "fahrenheit", "near": ["Lyon"]}')
    assert json.loads(out) == {
        "city": "Paris", "days": 1, "unit": "fahrenheit", "detail": "short", "near": ["Lyon"],
    }  # fmt: skip

    def greet(name: str) -> str:
        """Greets."""
        return f"Hello, {name}!"

    assert call_function(greet, '{"name": "Zoë"}') == "Hello, Zoë!"  # strings stay as they are

    def nothing() -> None:
        """Nothing."""

    assert call_function(nothing, "") == "null"  # empty arguments mean no arguments


def test_call_function_runs_async_functions() -> None:
    async def slow_add(left: int, right: int) -> int:
        """Adds."""
        await asyncio.sleep(0)
        return left + right

    assert call_function(slow_add, '{"left": 87787, "right": 788988737}') == "789076524"
    assert asyncio.run(acall_function(slow_add, '{"left": 1, "right": 2}')) == "3"


async def test_call_function_in_a_running_loop_points_to_acall_function() -> None:
    async def ping() -> str:
        """Ping."""
        return "pong"

    with pytest.raises(RuntimeError, match="acall_function"):
        call_function(ping, "{}")
    assert await acall_function(ping, "{}") == "pong"


def test_call_function_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        call_function(get_weather, "{city: Paris}")
    with pytest.raises(ValueError, match="JSON object"):
        call_function(get_weather, '["Paris"]')
    with pytest.raises(TypeError, match="city"):
        call_function(get_weather, '{"days": 2}')
    with pytest.raises(TypeError, match="country"):
        call_function(get_weather, '{"city": "Paris", "country": "FR"}')
    with pytest.raises(ValueError, match="kelvin"):
        call_function(get_weather, '{"city": "Paris", "unit": "kelvin"}')


def test_as_text_renders_results_as_json() -> None:
    @dataclass
    class Point:
        x: int
        y: int

    assert as_text(Point(1, 2)) == '{"x": 1, "y": 2}'
    assert as_text([Unit.CELSIUS, 1.5, None]) == '["celsius", 1.5, null]'
    assert as_text("plain") == "plain"


# ---- through the real SDK --------------------------------------------------------------


def big_add(left: int, right: int) -> int:
    """Adds two integers exactly.

    Args:
        left: The first addend.
        right: The second addend.
    """
    return left + right


def test_function_tool_drives_the_requires_action_loop(ds: str, fake_model: FakeModel) -> None:
    functions = {fn.__name__: fn for fn in (get_weather, big_add)}
    paris, sum_args = {"city": "Paris", "unit": "celsius"}, {"left": 87787, "right": 788988737}
    model = fake_model.new_model(
        ToolCalls([("get_weather", paris), ("big_add", sum_args)]),
        Reply("Sunny in Paris, and the sum is 789076524."),
    )
    tools = [function_tool(fn) for fn in functions.values()]
    assistant = ok(Assistants.create(model=model, tools=tools))
    assert [t.function.name for t in ok(Assistants.get(assistant.id)).tools] == list(functions)
    thread = ok(
        Threads.create(messages=[{"role": "user", "content": "Weather, and 87787+788988737?"}])
    )
    run = wait_done(thread.id, ok(Runs.create(thread.id, assistant_id=assistant.id)).id)
    assert run.status == "requires_action"

    # The F4 loop as an SDK user writes it: look the function up by name, call it, submit.
    calls = run.required_action.submit_tool_outputs.tool_calls
    outputs = []
    for call in calls:
        output = call_function(functions[call.function.name], call.function.arguments)
        outputs.append({"tool_call_id": call.id, "output": output})
    ok(Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs))
    assert wait_done(thread.id, run.id).status == "completed"

    first, second = fake_model.requests(model)
    sent = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert sent["big_add"]["parameters"] == tools[1]["function"]["parameters"]
    assert sent["get_weather"]["description"] == "The weather forecast for a city."
    results = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert json.loads(results[0])["city"] == "Paris" and results[1] == "789076524"


# ---- docs/tools.md, as written -----------------------------------------------------------


def _doc_blocks() -> tuple[str, str, str]:
    """The section's example, what it prints, and the SDK loop."""
    text = DOCS.read_text()
    section = text.split("## Function tools from Python functions", 1)[1].split("\n## ", 1)[0]
    example, printed, loop = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    return example, printed, loop


def _exec(code: str, namespace: dict[str, Any]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOCS), "exec"), namespace)
    return out.getvalue()


def test_docs_example_prints_what_the_docs_say() -> None:
    example, printed, _ = _doc_blocks()
    assert _exec(example, {"__name__": "docs_example"}) == printed


def test_docs_loop_runs_through_the_sdk(ds: str, fake_model: FakeModel) -> None:
    example, _, loop = _doc_blocks()
    model = fake_model.new_model(
        ToolCalls([("get_weather", {"city": "Paris"})]), Reply("21 degrees in Paris.")
    )
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    _exec(example, namespace)
    assert _exec(loop.replace('"qwen-max"', repr(model)), namespace) == "completed\n"
    tool_turn = fake_model.requests(model)[1]["messages"][-1]
    assert tool_turn["role"] == "tool"
    assert json.loads(tool_turn["content"]) == {
        "city": "Paris",
        "temperature": 21,
        "unit": "celsius",
    }
